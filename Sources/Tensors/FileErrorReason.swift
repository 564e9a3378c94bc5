// What went wrong with a file, in words: Foundation's file errors print as "The operation
// could not be completed. (NSCocoaErrorDomain error 512.)" when they carry no POSIX error.

import Foundation

/// A one-phrase reason for a file-system error, for messages that already name the path.
public enum FileErrorReason {
    /// The POSIX reason when the error carries one (`strerror`), else what the path is
    /// (a directory, not a regular file) or what Foundation's code means.
    public static func describe(_ error: Error, path: String?) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        guard ns.domain == NSCocoaErrorDomain else { return ns.localizedDescription }
        var isDirectory: ObjCBool = false
        if let path, !path.isEmpty, FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return "is a directory, expected a file" }
            var status = stat()
            if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG { return "is not a regular file" }
        }
        switch ns.code {
        case 4, 260: return "no such file or directory"
        case 257: return "permission denied (reading)"
        case 513: return "permission denied (writing)"
        case 516: return "already exists"
        case 640: return "no space left on the device"
        case 642: return "the volume is read-only"
        case 256...511: return "could not be read (Foundation file error \(ns.code))"
        case 512...767: return "could not be written (Foundation file error \(ns.code))"
        default: return ns.localizedDescription
        }
    }
}
