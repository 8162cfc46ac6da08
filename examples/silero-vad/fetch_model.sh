#!/bin/sh
# Fetches Silero VAD v5 (MIT licence) from the npm package @ricky0123/vad-web, which ships it as
# dist/silero_vad_v5.onnx, with `npm pack` (nothing is installed), and puts it at 1/model.onnx beside this script.
# The tarball is kept in ~/.cache/dais/npm-pack (the tests use the same cache).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
spec='@ricky0123/vad-web@0.0.31'
cache=${DAIS_NPM_PACK_CACHE:-$HOME/.cache/dais/npm-pack}/@ricky0123+vad-web@0.0.31
mkdir -p "$cache" "$here/1"
ls "$cache"/*.tgz >/dev/null 2>&1 || npm pack "$spec" --pack-destination "$cache" --silent >/dev/null
tar -xzf "$cache"/*.tgz -C "$cache" package/dist/silero_vad_v5.onnx
cp "$cache/package/dist/silero_vad_v5.onnx" "$here/1/model.onnx"
echo "wrote $here/1/model.onnx"
