// `dais convert <model.h5|model.keras> --out model.onnx [--json]`: a Keras model as an ONNX file, without Python.
import { writeFile } from 'node:fs/promises';
import { CliError, parseFlags, type Command } from './command.ts';

const HELP = `Usage: dais convert <model.h5 | model.keras> --out <model.onnx> [--json]

Converts a Keras model to ONNX (opset 17) in TypeScript, no Python or TensorFlow needed:
  - legacy HDF5 files from Keras 2 / tf.keras (model.save('model.h5')),
  - Keras 3 archives (model.save('model.keras')).
Inputs and outputs keep their Keras names; the batch axis is left dynamic. A layer without an exact ONNX
translation is refused with its name and class. 'dais serve model.h5' converts on the fly the same way.

Options:
  --out <file>  where to write the ONNX model (required)
  --json        print the conversion summary (inputs, outputs, operators, notes) as JSON
  -h, --help    show this help
`;

export const command: Command = {
  name: 'convert',
  summary: 'Convert a Keras model (.h5, .keras) to ONNX',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('convert', argv, { out: { type: 'string', short: 'o' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new CliError(`expected one Keras model file, got ${positionals.length} (see 'dais convert --help')`);
    if (!values.out) throw new CliError("--out <model.onnx> is required (see 'dais convert --help')");
    const path = positionals[0];
    const { kerasToOnnx } = await import('../formats/keras/index.ts');
    const result: Awaited<ReturnType<typeof kerasToOnnx>> = await kerasToOnnx(path);
    try {
      await writeFile(values.out, result.onnx);
    } catch (e) {
      throw new CliError(`cannot write ${values.out}: ${(e as Error).message}`);
    }
    const summary = {
      source: path,
      out: values.out,
      format: result.format,
      kerasVersion: result.kerasVersion,
      modelClass: result.modelClass,
      modelName: result.modelName,
      bytes: result.onnx.length,
      inputs: result.inputs,
      outputs: result.outputs,
      operators: result.operators,
      notes: result.notes,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return 0;
    }
    const tensor = (t: { name: string; datatype: string; shape: number[] }) => `  ${t.name}  ${t.datatype}  [${t.shape.join(', ')}]`;
    process.stdout.write(
      [
        `wrote ${values.out} (${result.onnx.length} bytes)`,
        ...result.notes,
        'inputs:',
        ...result.inputs.map(tensor),
        'outputs:',
        ...result.outputs.map(tensor),
        `operators: ${result.operators.join(', ')}`,
      ].join('\n') + '\n',
    );
    return 0;
  },
};
