// One run per output folder at a time: a run holds an exclusive `flock` on the empty file
// `.mtp-train.lock` in its folder for as long as it lives. The kernel drops the lock when the
// process ends, however it ends (SIGKILL included), so there is no stale lock to clean up,
// and the check works across PID namespaces (containers sharing a volume on one host).

import Foundation

/// A run's claim on its output folder.
public final class RunFolderLock {
    /// The lock file's name in the folder.
    public static let fileName = ".mtp-train.lock"

    /// The claimed folder.
    public let folder: URL
    private var descriptor: Int32

    private init(folder: URL, descriptor: Int32) {
        self.folder = folder
        self.descriptor = descriptor
    }

    deinit { release() }

    /// Claims `folder` (creating it and the lock file if needed); nil when another process
    /// holds it.
    /// - Throws: ``TrainingError`` when the folder or its lock file cannot be created.
    public static func claim(_ folder: URL) throws -> RunFolderLock? {
        try CheckpointFile.makeFolder(folder)
        let path = folder.appendingPathComponent(fileName).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointFile.systemError("--out \(folder.path) is not writable (cannot create \(path))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return RunFolderLock(folder: folder, descriptor: fd)
    }

    /// Whether another process holds `folder`'s lock now (false when there is no lock file).
    public static func isHeld(_ folder: URL) -> Bool {
        let path = folder.appendingPathComponent(fileName).path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// Gives the folder up (the lock file stays, empty).
    public func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }
}
