import ArgumentParser
import Losses
import Training

/// `--loss fused|masked|chunked` (`mtp train`, `mtp bench loss`): the raw values, so an
/// unknown name is rejected with the list of valid ones.
extension LossKind: ExpressibleByArgument {}

extension TrainingPreset: ExpressibleByArgument {}
