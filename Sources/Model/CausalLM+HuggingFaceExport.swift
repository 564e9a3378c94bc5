// Writing a CausalLM as a Hugging Face model directory that `transformers` loads as
// `LlamaForCausalLM`: config.json (HuggingFaceConfig), generation_config.json,
// model.safetensors with `format: pt` metadata (transformers refuses other formats)
// and the weights alone (no optimizer state), the MTP depths in the DeepSeek-V3 layout
// (CausalLM+HuggingFaceLayout.swift), and the tokenizer file when there is one.
//
// Nothing the user has is overwritten: the output must be a new path or an empty directory
// (symbolic links and `..` resolved, so an input directory can never be its own output).
// Everything is checked and encoded first, the files are written into a hidden sibling
// `.<name>.partial-<pid>`, and that directory is renamed into place at the end; on failure
// it is removed, with any parent folders the export created, so a failed export leaves nothing.

import Foundation
import Tensors

/// How to export a model to a Hugging Face directory.
public struct HuggingFaceExportOptions: Sendable {
    /// The dtype of the written weights (float32, float16 or bfloat16; converted with
    /// round-to-nearest-even).
    public var dtype: DType
    /// A `tokenizer.json` to copy beside the weights.
    public var tokenizer: URL?
    /// The beginning-of-sequence id written to the configs, when the tokenizer has one.
    public var bosTokenID: Int32?
    /// The end-of-sequence id written to the configs, when the tokenizer has one.
    public var eosTokenID: Int32?

    /// Options; by default float32 weights and no tokenizer.
    public init(dtype: DType = .float32, tokenizer: URL? = nil, bosTokenID: Int32? = nil, eosTokenID: Int32? = nil) {
        self.dtype = dtype
        self.tokenizer = tokenizer
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
    }
}

extension CausalLM {
    /// The weights under their Hugging Face names (tied copies included), in `dtype`.
    ///
    /// - Throws: ``ModelError`` for a non-floating dtype or a layout without a DeepSeek-V3 form.
    public func huggingFaceTensors(dtype: DType = .float32) throws -> [String: Tensor] {
        _ = try HuggingFaceConfig.torchName(dtype)
        var out: [String: Tensor] = [:]
        for entry in try huggingFaceLayout() {
            let source = entry.parameter.value.detached()
            let converted = source.cast(to: dtype)
            // A weight that is not finite, or that the narrower dtype turns into ±inf, would be
            // written without a word and load as garbage.
            if let (bad, _) = converted.firstNonFiniteFloat() {
                let value = source.floats[bad]
                throw ModelError(value.isFinite
                    ? "\(entry.name) holds \(value) at element \(bad), beyond \(dtype)'s range; export as bf16 or f32"
                    : "\(entry.name) holds \(value) at element \(bad); weights must be finite to export")
            }
            out[entry.name] = converted
        }
        return out
    }

    /// Writes the model as a new Hugging Face directory: `config.json`,
    /// `generation_config.json`, `model.safetensors` and, when `options.tokenizer` is set,
    /// `tokenizer.json`. Missing parent folders are created.
    ///
    /// - Parameters:
    ///   - directory: the output directory: a path that does not exist, or an empty directory
    ///     (see ``HuggingFaceDirectory/exportTarget(_:)``).
    ///   - options: dtype and tokenizer.
    /// - Returns: the files written.
    /// - Throws: ``ModelError`` for an unsupported dtype or layout, an output path that exists
    ///   and is not an empty directory, or a file that cannot be written (then nothing is left behind).
    ///
    /// Postconditions: on success `directory` holds exactly the returned files; on failure the
    /// file system is as it was.
    @discardableResult
    public func exportHuggingFace(to directory: URL, options: HuggingFaceExportOptions = HuggingFaceExportOptions()) throws -> [URL] {
        let tensors = try huggingFaceTensors(dtype: options.dtype)
        let config = try HuggingFaceConfig.json(for: self.config, dtype: options.dtype, bosTokenID: options.bosTokenID,
                                                eosTokenID: options.eosTokenID)
        var generationFields: [String: Any] = ["_from_model_config": true, "do_sample": false]
        if let bos = options.bosTokenID { generationFields["bos_token_id"] = Int(bos) }
        if let eos = options.eosTokenID { generationFields["eos_token_id"] = Int(eos) }
        let generation = try JSONSerialization.data(withJSONObject: generationFields, options: [.prettyPrinted, .sortedKeys])
        var files: [(name: String, data: Data)] = [(HuggingFaceDirectory.configFile, config),
                                                   ("generation_config.json", generation)]
        if let tokenizer = options.tokenizer {
            guard let data = FileManager.default.contents(atPath: tokenizer.path) else {
                throw ModelError("tokenizer \(tokenizer.path) is not a readable file")
            }
            files.append((HuggingFaceDirectory.tokenizerFile, data))
        }
        let target = try HuggingFaceDirectory.exportTarget(directory)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: target.path, isDirectory: &isFolder), isFolder.boolValue {
            // An existing empty directory (a mount point, or one in a folder we may not write):
            // staged inside it, then each file linked into place.
            try HuggingFaceDirectory.exportInto(target, files: files, tensors: tensors)
        } else {
            try HuggingFaceDirectory.exportAsNewDirectory(target, files: files, tensors: tensors)
        }
        let written = [HuggingFaceDirectory.configFile, "generation_config.json", HuggingFaceDirectory.weightsFile]
            + (options.tokenizer == nil ? [] : [HuggingFaceDirectory.tokenizerFile])
        return written.map { target.appendingPathComponent($0) }
    }
}

extension HuggingFaceDirectory {
    /// Tests set this to fail an export after its files are staged (fault injection for the
    /// clean-up paths); nothing else sets it.
    nonisolated(unsafe) static var failAfterStaging = false

    private static func stage(_ files: [(name: String, data: Data)], _ tensors: [String: Tensor], in staging: URL) throws {
        // A new folder (never one that was there: that is not ours to remove).
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false)
        for file in files { try file.data.write(to: staging.appendingPathComponent(file.name)) }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: staging.appendingPathComponent(weightsFile))
        if failAfterStaging { throw ModelError("export failed after staging (injected fault)") }
    }

    /// A new directory: staged beside it, then renamed into place. rename(2) replaces an
    /// empty directory and nothing else, so the check before cannot be raced into an overwrite.
    static func exportAsNewDirectory(_ target: URL, files: [(name: String, data: Data)], tensors: [String: Tensor]) throws {
        let created = try makeParents(of: target)
        let staging = unusedName(in: target.deletingLastPathComponent(), prefix: ".\(target.lastPathComponent).partial-\(getpid())")
        do {
            try stage(files, tensors, in: staging)
            guard rename(staging.path, target.path) == 0 else {
                throw ModelError("cannot move the export into \(target.path): \(systemReason(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(at: staging)
            if let created { try? FileManager.default.removeItem(at: created) }
            throw error
        }
    }

    /// An existing empty directory, kept (its owner, mode and mount stay): staged in a hidden
    /// folder inside it, then each file hard-linked into place, which fails rather than
    /// replaces a file that appeared meanwhile. On failure the directory is left empty again.
    static func exportInto(_ target: URL, files: [(name: String, data: Data)], tensors: [String: Tensor]) throws {
        let staging = unusedName(in: target, prefix: ".export.partial-\(getpid())")
        var placed: [String] = []
        do {
            try stage(files, tensors, in: staging)
            for name in files.map(\.name) + [weightsFile] {
                let from = staging.appendingPathComponent(name).path, to = target.appendingPathComponent(name).path
                guard link(from, to) == 0 else {
                    throw ModelError("cannot place \(name) in \(target.path): \(systemReason(errno))")
                }
                placed.append(to)
            }
            try FileManager.default.removeItem(at: staging)
        } catch {
            for path in placed { unlink(path) }
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
    }

    /// `folder/prefix`, or `folder/prefix-N` for the first N with nothing of that name.
    private static func unusedName(in folder: URL, prefix: String) -> URL {
        var info = stat()
        var name = prefix, n = 1
        while lstat(folder.appendingPathComponent(name).path, &info) == 0 {
            n += 1
            name = "\(prefix)-\(n)"
        }
        return folder.appendingPathComponent(name)
    }

    /// Where an export to `url` goes: the path with symbolic links and `.`/`..` resolved.
    ///
    /// - Returns: the resolved path, which does not exist or is an empty directory.
    /// - Throws: ``ModelError`` naming the path when something other than an empty directory
    ///   is there (a file, a dangling symbolic link, a non-empty directory such as the model
    ///   being exported), or when the nearest existing folder above it is not a directory.
    public static func exportTarget(_ url: URL) throws -> URL {
        var info = stat()
        if lstat(url.path, &info) == 0 {
            guard let real = realPath(url.path), isDirectory(real),
                  let entries = try? FileManager.default.contentsOfDirectory(atPath: real), entries.isEmpty, real != "/" else {
                throw ModelError("\(url.path) exists and is not an empty directory; the export writes a new "
                    + "directory and overwrites nothing (name a new or empty directory)")
            }
            return URL(fileURLWithPath: real, isDirectory: true)
        }
        // A new path: the nearest existing folder above it, resolved, plus the new components.
        var missing: [String] = []
        var above = url.standardizedFileURL
        while lstat(above.path, &info) != 0, above.path != "/" {
            missing.insert(above.lastPathComponent, at: 0)
            above = above.deletingLastPathComponent()
        }
        guard let real = realPath(above.path), isDirectory(real) else {
            throw ModelError("\(url.path) cannot be created: \(above.path) is not a directory")
        }
        return missing.reduce(URL(fileURLWithPath: real, isDirectory: true)) { $0.appendingPathComponent($1) }
    }

    /// Creates the missing folders above `target`.
    /// - Returns: the topmost folder created (to remove on failure), nil when none was missing.
    /// - Throws: ``ModelError`` naming the folder that could not be created.
    static func makeParents(of target: URL) throws -> URL? {
        var missing: [URL] = []
        var folder = target.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.path), folder.path != "/" {
            missing.append(folder)
            folder = folder.deletingLastPathComponent()
        }
        for folder in missing.reversed() where mkdir(folder.path, 0o755) != 0 {
            let reason = systemReason(errno)
            if let top = missing.last { try? FileManager.default.removeItem(at: top) }
            throw ModelError("cannot create the folder \(folder.path) for the export: \(reason)")
        }
        return missing.last
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// realpath(3) of `path`, nil when some component does not exist.
    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// The system's text for an errno value.
private func systemReason(_ code: Int32) -> String { String(cString: strerror(code)) }
