// The v2 wire format: JSON tensors and Triton's binary tensor extension, in both directions. Server side: a request
// decoded (decode-request.ts, its JSON read by json-numbers.ts), a response encoded (encode-response.ts); client
// side the other way (client.ts); one tensor reader (tensor-read.ts) and one tensor writer (tensor-write.ts) for both.
export { BINARY_HEADER } from './wire.ts';
export { READ_IN_PLACE_BYTES } from './tensor-read.ts';
export { decodeInferRequest, decodeInferRequestSlow, requestFromJson } from './decode-request.ts';
export { rawJsonData, toBinary, toJsonData, type EncodedBody } from './tensor-write.ts';
export { binaryOutputNames, encodeInferResponse } from './encode-response.ts';
export { decodeInferResponse, encodeInferRequest } from './client.ts';
