// preprocess.text's tokenizer: @huggingface/tokenizers built from a model's tokenizer.json. In its own file so an
// edge bundle whose model declares no text step swaps it for tokenizer-absent.ts and carries no tokenizer library.
import { Tokenizer } from '@huggingface/tokenizers';
import type { TextTokenizer } from './processing.ts';

export function createTokenizer(tokenizerJson: object, tokenizerConfig: object = {}): TextTokenizer {
  return new Tokenizer(tokenizerJson, tokenizerConfig);
}
