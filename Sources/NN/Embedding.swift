// A token-embedding table: rows of the weight picked by integer ids.

import Tensors

/// A lookup table mapping integer ids to learned vectors.
///
/// Parameter name: `weight` (`[vocabularySize, dimension]`).
public final class Embedding: Layer {
    /// `[vocabularySize, dimension]`, initialised normal(0, std).
    public let weight: Parameter
    /// The number of ids.
    public let vocabularySize: Int
    /// The length of each vector.
    public let dimension: Int

    /// A table with entries drawn from `generator`.
    ///
    /// - Parameters:
    ///   - vocabularySize, dimension: the sizes (precondition: positive).
    ///   - std: the standard deviation of the normal initialisation.
    ///   - generator: the seeded source of the initial weights.
    public init(vocabularySize: Int, dimension: Int, std: Float = 0.02, generator: inout SplitMix64) {
        precondition(vocabularySize > 0 && dimension > 0, "Embedding needs positive sizes, got \(vocabularySize) × \(dimension)")
        self.vocabularySize = vocabularySize
        self.dimension = dimension
        weight = Parameter(Tensor.normal([vocabularySize, dimension], std: std, generator: &generator))
    }

    /// A table around an existing parameter (for tied weights or loaded values).
    ///
    /// - Parameter weight: `[vocabularySize, dimension]`.
    /// - Throws: ``Tensors/TensorError/shapeMismatch(_:)`` when the weight is not 2-D with positive sizes.
    public init(weight: Parameter) throws {
        guard weight.shape.count == 2, weight.shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shapeMismatch("Embedding weight must be [V, D] with positive sizes, got \(weight.shape)")
        }
        vocabularySize = weight.shape[0]
        dimension = weight.shape[1]
        self.weight = weight
    }

    /// Replaces the plain lookup when set: a vocabulary-parallel driver installs one for a
    /// table that holds only its rank's rows (masked lookup + all-reduce). It gets the ids and
    /// the current weight; nil (the default) is the plain lookup.
    public var lookup: ((_ ids: Tensor, _ weight: Tensor) throws -> Tensor)?

    /// The table, under the key `weight`.
    public var ownParameters: [(key: String, parameter: Parameter)] { [("weight", weight)] }

    /// The rows of the table at `ids`.
    ///
    /// - Parameter ids: an int32 or int64 tensor of any shape, values in `[0, vocabularySize)`.
    /// - Returns: `ids.shape + [dimension]`; the weight's gradient adds into the picked rows.
    /// - Throws: ``Tensors/TensorError`` when `ids` is not integer or an id is out of range.
    public func callAsFunction(_ ids: Tensor) throws -> Tensor {
        if let lookup { return try lookup(ids, weight.value) }
        return try Tensor.embedding(ids, weight: weight.value)
    }
}
