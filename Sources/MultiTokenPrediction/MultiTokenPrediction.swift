// The umbrella module: `import MultiTokenPrediction` brings in every library module
// (as swift-numerics' `Numerics` does for its modules).

@_exported import Data
@_exported import Distributed
@_exported import Generation
@_exported import Losses
@_exported import LossCases
@_exported import Model
@_exported import MTP
@_exported import NN
@_exported import Pipeline
@_exported import Tensors
@_exported import Training
