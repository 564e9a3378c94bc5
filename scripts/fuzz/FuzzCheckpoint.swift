// libFuzzer entry point for checkpoint loading: any bytes are read as an mtp checkpoint
// (`Trainer.readCheckpoint`: checksum, metadata, model configuration against the tensor
// shapes) and, when accepted, a model and its AdamW state are built and loaded from it as
// `--resume` and `mtp generate` do. The property: every input either throws or loads; a
// trap, a sanitizer report, a hang or a huge allocation is a finding.

import Foundation
import Model
import Training

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = Data(UnsafeRawBufferPointer(start: bytes, count: count))
    guard let run = try? Trainer.readCheckpoint(from: input, source: "<fuzz>") else { return 0 }
    guard let model = try? CausalLM(config: run.options.model, seed: 0) else { return 0 }
    guard (try? model.loadParameters(run.tensors)) != nil else { return 0 }
    let optimizer = AdamW(parameters: model.namedParameters(), weightDecay: run.options.weightDecay)
    _ = try? optimizer.load(stateTensors: run.tensors, step: run.step - run.skippedSteps.count)
    return 0
}
