// swift-tools-version: 6.0
import PackageDescription

// MARK: - Targets

let package = Package(
    name: "MultiTokenPrediction",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Losses", targets: ["Losses"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "MTP", targets: ["MTP"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .executable(name: "mtp", targets: ["mtp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "pkg-config"])]
        ),

        // MARK: Library modules
        .target(
            name: "Tensors",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))]
        ),

        .target(name: "Losses", dependencies: ["Tensors"]),
        .target(name: "NN", dependencies: ["Tensors"]),
        .target(name: "MTP", dependencies: ["Tensors", "Losses", "NN"]),
        .target(name: "Training", dependencies: ["Tensors", "Losses", "NN", "MTP"]),
        .target(name: "Pipeline", dependencies: ["Tensors", "Losses", "NN", "MTP", "Training"]),

        // MARK: Command-line tool
        .executableTarget(
            name: "mtp",
            dependencies: [
                "Tensors", "Losses", "NN", "MTP", "Training", "Pipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "LossesTests", dependencies: ["Losses", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TestSupport"]),
        .testTarget(name: "MTPTests", dependencies: ["MTP", "Losses", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "MTP", "NN", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Training", "MTP", "NN", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
