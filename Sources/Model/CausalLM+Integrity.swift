// A checkpoint's tensors are checked against the checksum its writer stored, so a file
// damaged after it was written (zeroed, overwritten in part) is refused, not loaded.

import Tensors

extension CausalLM {
    /// Throws when `metadata` holds a `payload_checksum` that `tensors` do not match.
    /// - Throws: ``ModelError`` saying the file is damaged.
    public static func verifyPayload(_ tensors: [String: Tensor], metadata: [String: String], source: String) throws {
        guard let stored = metadata["payload_checksum"] else { return }
        let actual = SafeTensors.payloadChecksum(tensors)
        guard stored == actual else {
            throw ModelError("\(source) is damaged: its tensors' checksum is \(actual), the checkpoint recorded \(stored)")
        }
    }
}
