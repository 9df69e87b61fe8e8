// IndexMem — cache. Apache-2.0.
//
// A model's layers and the layers a budget applies to are counted differently: on Gemma 3
// the first global layer is model layer 5 but budgeted layer 0. Scorers index their learned
// parameters by the budgeted layer, memories may want the model layer; both get this one
// value, so neither has to guess which index it was handed.

// MARK: - Where a layer cache sits

/// One layer's place in the model and among the layers a budget applies to.
public struct LayerContext: Sendable, Equatable {
    /// The layer's index among all the model's layers.
    public var modelLayer: Int
    /// The model's layer count.
    public var modelLayers: Int
    /// The layer's index among the budgeted (global) layers; nil for a sliding-window layer,
    /// which keeps its window whatever the policy.
    public var budgetedLayer: Int?
    /// How many layers a budget applies to.
    public var budgetedLayers: Int
    /// The layer's attention shape.
    public var shape: AttentionShape

    public init(modelLayer: Int, modelLayers: Int, budgetedLayer: Int?, budgetedLayers: Int, shape: AttentionShape) {
        self.modelLayer = modelLayer
        self.modelLayers = modelLayers
        self.budgetedLayer = budgetedLayer
        self.budgetedLayers = budgetedLayers
        self.shape = shape
    }

    /// A cache used on its own (tests, tools): the model's only layer, and budgeted.
    public static func standalone(_ shape: AttentionShape) -> LayerContext {
        LayerContext(modelLayer: 0, modelLayers: 1, budgetedLayer: 0, budgetedLayers: 1, shape: shape)
    }
}
