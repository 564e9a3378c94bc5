// libFuzzer entry point for the safetensors reader. `run.sh` compiles this
// file into one module with Sources/Tensors, so it calls the library as a
// user would, through `SafeTensors.read(from:)`.
//
// The property checked: any input either throws a SafeTensorsError or is
// read; and what is read survives `encode` and a second `read` unchanged.
// A trap, an out-of-bounds access (AddressSanitizer) or a failed round trip
// is a finding.

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = Data(UnsafeRawBufferPointer(start: bytes, count: count))
    let first: (tensors: [String: Tensor], metadata: [String: String])
    do {
        first = try SafeTensors.read(from: input)
    } catch is SafeTensorsError {
        return 0
    } catch {
        fatalError("reader threw a non-SafeTensorsError: \(error)")
    }
    let second: (tensors: [String: Tensor], metadata: [String: String])
    do {
        second = try SafeTensors.read(from: SafeTensors.encode(first.tensors, metadata: first.metadata))
    } catch {
        fatalError("re-reading what was read failed: \(error)")
    }
    guard second.metadata == first.metadata, second.tensors.count == first.tensors.count else {
        fatalError("round trip changed the metadata or the tensor names")
    }
    for (name, a) in first.tensors {
        guard let b = second.tensors[name], a.dtype == b.dtype, a.shape == b.shape,
              a.withUnsafeBytes({ x in b.withUnsafeBytes { y in x.elementsEqual(y) } }) else {
            fatalError("round trip changed tensor \(name)")
        }
    }
    return 0
}
