// Stands in for tokenizer-hf.ts in an edge bundle whose model declares no text step (see edge/steps-plugin.ts).
import type { TextTokenizer } from './processing.ts';

export function createTokenizer(_json: object, _config?: object): TextTokenizer {
  throw new Error('this bundle was built without a tokenizer (the model declares no preprocess.text)');
}
