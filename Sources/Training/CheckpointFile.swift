// Writing a run's files so that no crash loses a run: a checkpoint is written to a
// temporary file in the same folder, flushed to disk, then renamed over the old one, so
// a SIGKILL at any moment leaves either the previous checkpoint or the new one, never a
// torn file. Temporaries of killed runs are removed when the next run starts. Before
// step 1 the folder is checked writable and its free space against the checkpoint size,
// so a full or read-only --out fails at once instead of after the whole run.

import Foundation

/// Atomic checkpoint writes, stale-temporary cleanup and the pre-flight checks.
public enum CheckpointFile {
    /// The marker in the names of temporaries: `.<name>.partial-<pid>`.
    static let partialMarker = ".partial-"

    /// Writes `data` to `url` atomically (temporary file, fsync, rename, fsync of the folder).
    /// - Throws: ``TrainingError`` naming the path and the system's reason.
    public static func write(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent)\(partialMarker)\(getpid())")
        // Whatever has the name already (a symbolic link planted in a shared folder, say) is
        // removed, never followed: the temporary is always a new file of ours.
        unlink(temporary.path)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw systemError("cannot create \(temporary.path)") }
        var failure: TrainingError?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = systemError("cannot write \(url.path)")
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = systemError("cannot flush \(url.path) to disk") }
        close(fd)
        if let failure {
            unlink(temporary.path)
            throw failure
        }
        guard rename(temporary.path, url.path) == 0 else {
            let e = systemError("cannot move the new checkpoint to \(url.path)")
            unlink(temporary.path)
            throw e
        }
        // The rename itself is durable once the folder's entry is on disk.
        let dir = open(folder.path, O_RDONLY)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }

    /// Removes temporaries that killed runs left in `folder` (best effort): only regular
    /// files named exactly as ``write(_:to:)`` and the probe name theirs,
    /// `.checkpoint.safetensors.partial-<pid>` or `.probe.partial-<pid>`, whose process is gone.
    /// Anything else, a user's hidden file or a live run's temporary, is left alone.
    public static func removeStaleTemporaries(in folder: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names {
            guard let pid = temporaryOwner(name), !processIsAlive(pid) else { continue }
            let path = folder.appendingPathComponent(name).path
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            unlink(path)
        }
    }

    /// The process id in a temporary's name, or nil when `name` is not one of ours.
    static func temporaryOwner(_ name: String) -> pid_t? {
        guard name.hasPrefix("."), let marker = name.range(of: partialMarker, options: .backwards) else { return nil }
        let base = name[name.index(after: name.startIndex)..<marker.lowerBound]
        guard base == TrainingRun.checkpointName || base == "probe" else { return nil }
        let digits = name[marker.upperBound...]
        guard let pid = pid_t(digits), pid > 0, String(pid) == digits else { return nil }
        return pid
    }

    /// Whether a process with this id exists (one we may not signal still exists).
    static func processIsAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// Creates `folder` if needed and checks that a file of `bytes` bytes can be written there:
    /// a probe file is created and removed, and the free space must hold the checkpoint twice
    /// (the new one is complete before the old one is replaced).
    /// - Throws: ``TrainingError`` naming the folder and the reason.
    public static func checkWritable(_ folder: URL, bytes: Int) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw TrainingError("--out \(folder.path) is a file, not a folder")
        }
        try makeFolder(folder)
        removeStaleTemporaries(in: folder)
        let probe = folder.appendingPathComponent(".probe\(partialMarker)\(getpid())")
        unlink(probe.path)
        let fd = open(probe.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw systemError("--out \(folder.path) is not writable") }
        close(fd)
        unlink(probe.path)
        var fs = statvfs()
        if statvfs(folder.path, &fs) == 0 {
            let free = Int(clamping: UInt64(fs.f_bavail) &* UInt64(fs.f_frsize))
            let needed = bytes.multipliedReportingOverflow(by: 2)
            if needed.overflow || free < needed.partialValue {
                throw TrainingError("--out \(folder.path) has \(free / 1_000_000) MB free; a checkpoint of this run takes "
                    + "\(bytes / 1_000_000) MB and is written beside the previous one (needs \(bytes * 2 / 1_000_000) MB)")
            }
        }
    }

    /// The bytes of a checkpoint of `trainer`'s run, roughly: weights and two AdamW moments,
    /// Float32, plus room for the metadata.
    static func estimatedBytes(parameters: Int) -> Int {
        parameters.multipliedReportingOverflow(by: 12).partialValue + 1_000_000
    }

    /// `mkdir -p` that names the component that failed and why (Foundation's error here is
    /// "NSCocoaErrorDomain error 512" without a reason).
    static func makeFolder(_ folder: URL) throws {
        var path = ""
        for component in folder.standardizedFileURL.pathComponents {
            path = component == "/" ? "/" : (path.hasSuffix("/") ? path : path + "/") + component
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                guard isFolder.boolValue else {
                    throw TrainingError("--out \(folder.path): cannot create the folder (\(path) is a file, not a folder)")
                }
                continue
            }
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
                throw TrainingError("--out \(folder.path): cannot create the folder \(path) (\(String(cString: strerror(errno))))")
            }
        }
    }

    static func systemError(_ what: String) -> TrainingError {
        TrainingError("\(what): \(String(cString: strerror(errno)))")
    }
}
