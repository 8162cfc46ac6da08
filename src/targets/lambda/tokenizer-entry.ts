// The entry of tokenizer.mjs: the Hugging Face tokenizer library, bundled apart from the handler (registry.ts).
export { Tokenizer } from '@huggingface/tokenizers';
