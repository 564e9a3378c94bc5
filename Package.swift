// swift-tools-version: 6.0
import PackageDescription

// The module layering (arrows point to what a module imports; nothing imports sideways):
//   mtp → LossCases, Generation, Training, Pipeline → Data, Model → MTP → NN, Losses → Tensors → CBLAS
//   NN, Training → CRowKernels (the decoding row kernels, the elementwise training kernels, the attention tiles)
//   mtp → Distributed → Training, Pipeline, CMPI (OpenMPI)

let package = Package(
    name: "MultiTokenPrediction",
    platforms: [.macOS(.v14)],
    // MARK: - Products
    products: [
        .library(name: "MultiTokenPrediction", targets: ["MultiTokenPrediction"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Losses", targets: ["Losses"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "MTP", targets: ["MTP"]),
        .library(name: "Data", targets: ["Data"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Generation", targets: ["Generation"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Distributed", targets: ["Distributed"]),
        .library(name: "LossCases", targets: ["LossCases"]),
        .executable(name: "mtp", targets: ["mtp"]),
    ],
    // MARK: - Dependencies
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Tests only: property-based checks that no combination of numeric options traps.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "pkg-config"])]
        ),

        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),

        // The few-row decoding projection, the elementwise training loops and the attention tiles (AVX2 / AVX-512
        // chosen at run time; see its README).
        .target(name: "CRowKernels"),

        // MARK: Core
        .target(
            name: "Tensors",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))]
        ),
        .target(name: "Losses", dependencies: ["Tensors"]),
        .target(name: "NN", dependencies: ["Tensors", "CRowKernels"]),
        .target(name: "MTP", dependencies: ["Tensors", "Losses", "NN"]),

        // MARK: Models, data and what runs them
        .target(name: "Data", dependencies: ["Tensors"]),
        .target(name: "Model", dependencies: ["Tensors", "Losses", "NN", "MTP"]),
        .target(name: "Training", dependencies: ["Tensors", "Losses", "NN", "MTP", "Data", "Model", "CRowKernels"]),
        .target(name: "Generation", dependencies: ["Tensors", "NN", "MTP", "Model"]),
        .target(name: "Pipeline", dependencies: ["Tensors", "Losses", "NN", "MTP", "Data", "Model"]),
        .target(
            name: "Distributed",
            dependencies: ["Tensors", "Losses", "NN", "MTP", "Data", "Model", "Training", "Pipeline",
                           .target(name: "CMPI", condition: .when(platforms: [.linux]))]
        ),
        .target(name: "LossCases", dependencies: ["Tensors", "Losses", "MTP"]),

        // MARK: Umbrella
        .target(
            name: "MultiTokenPrediction",
            dependencies: ["Tensors", "Losses", "NN", "MTP", "Data", "Model", "Training", "Generation", "Pipeline", "Distributed",
                           "LossCases"]
        ),

        // MARK: Command-line tool
        .executableTarget(
            name: "mtp",
            dependencies: [
                "Tensors", "Losses", "NN", "MTP", "Data", "Model", "Training", "Generation", "Pipeline", "Distributed",
                "LossCases",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .target(name: "TrainingTestSupport", dependencies: ["Training", "Model", "Data"], path: "Tests/TrainingTestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "LossesTests", dependencies: ["Losses", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "CRowKernels", "TestSupport"]),
        .testTarget(name: "MTPTests", dependencies: ["MTP", "Losses", "NN", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Tensors", "MTP", "TestSupport"]),
        .testTarget(name: "LossCasesTests", dependencies: ["LossCases", "MTP", "Losses", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "MTP", "NN", "Losses", "Tensors", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["TrainingTestSupport", "Training", "Data", "Model", "MTP", "NN", "TestSupport",
                                                          .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "GenerationTests", dependencies: ["TrainingTestSupport", "Generation", "Training", "Data", "Model", "MTP", "NN", "TestSupport"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Tensors", "mtp"]),
        .testTarget(name: "PipelineTests", dependencies: ["TrainingTestSupport", "Pipeline", "Training", "Data", "Model", "MTP", "NN", "TestSupport"]),
        // Depends on the executable so `mtp` is built before its tests run it as a subprocess.
        .testTarget(name: "CLITests", dependencies: ["mtp", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
