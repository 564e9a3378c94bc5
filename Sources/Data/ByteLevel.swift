// GPT-2's byte-level alphabet: every byte value gets a printable Unicode character, so a
// BPE vocabulary of strings covers any byte sequence without an unknown token.
//
// Bytes that are printable Latin-1 ('!'…'~', '¡'…'¬', '®'…'ÿ': 188 of them) stand for
// themselves; the other 68 (controls, space, DEL, NBSP, soft hyphen) take U+0100, U+0101, …
// in byte order. So a space becomes 'Ġ' (U+0120) and a newline 'Ċ' (U+010A).

/// The byte ↔ character map of byte-level BPE (GPT-2, Llama 3, Qwen2 tokenizers).
public enum ByteLevel {
    /// `characters[b]`: the character that stands for byte b.
    public static let characters: [Character] = {
        var out = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                out[b] = Character(Unicode.Scalar(UInt8(b)))
            } else {
                out[b] = Character(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return out
    }()

    /// The byte each alphabet character stands for.
    public static let bytes: [Character: UInt8] = {
        var out: [Character: UInt8] = [:]
        for (b, c) in characters.enumerated() { out[c] = UInt8(b) }
        return out
    }()

    /// The alphabet string of `text`'s UTF-8 bytes.
    public static func encode(_ text: Substring) -> String {
        var out = String()
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 { out.append(characters[Int(b)]) }
        return out
    }

    /// The bytes a token stands for: every character mapped back, or — when a character is
    /// not in the alphabet (an added token's text) — the token's own UTF-8 bytes, as the
    /// Hugging Face ByteLevel decoder does.
    public static func decode(token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.count)
        for c in token {
            guard let b = bytes[c] else { return Array(token.utf8) }
            out.append(b)
        }
        return out
    }
}
