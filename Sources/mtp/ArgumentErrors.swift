// The one error contract of every `mtp` subcommand: on any failure — a parse error of
// ArgumentParser's included — exactly one `error: …` line on stderr and exit status 1;
// `--help` still prints its text on stdout and exits 0.
//
// ArgumentParser's own `main` prints a multi-line `Error: …` block and exits 64 for
// parse errors, so `MTPCommand.main` parses with `parseAsRoot` and reports here instead.

import ArgumentParser
import Foundation
import Tensors

extension MTPCommand {
    /// Parses `arguments`, runs the chosen subcommand and exits with the CLI's status.
    static func runReportingErrors(_ arguments: [String]) -> Never {
        do {
            var command = try parseAsRoot(NegativeNumbers.attached(arguments))
            // An MTP_GEMM that names no usable engine is refused before any work (the library
            // alone would ignore it).
            _ = try BLAS.requestedEngine()
            for variable in ["MTP_ROW_KERNEL", "MTP_ATTENTION_KERNEL"] {
                if let kernel = ProcessInfo.processInfo.environment[variable], !["generic", "avx2", "avx512"].contains(kernel) {
                    throw ValidationError("\(variable)='\(kernel)' must be generic, avx2 or avx512")
                }
            }
            if let split = ProcessInfo.processInfo.environment["MTP_BLAS_SPLIT"], split != "0", split != "1" {
                throw ValidationError("MTP_BLAS_SPLIT='\(split)' must be 0 (OpenBLAS's own thread pool, no split) or 1 (the default split)")
            }
            try command.run()
            Foundation.exit(0)
        } catch {
            Foundation.exit(report(error, arguments: arguments))
        }
    }

    /// Prints what `error` means and returns the exit status.
    static func report(_ error: Error, arguments: [String]) -> Int32 {
        // A command that already printed its error line ends with an ExitCode.
        if let code = error as? ExitCode { return code.rawValue }
        if exitCode(for: error) == .success {  // --help, --version
            print(fullMessage(for: error))
            return 0
        }
        let message: String
        if error is ValidationError || isArgumentParserError(error) {
            // Keep ArgumentParser's first line ("Error: Missing value for '--lr <lr>'") and point at the help.
            let first = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let text = first.hasPrefix("Error: ") ? String(first.dropFirst("Error: ".count)) : first
            message = text + " (see '\(helpCommand(arguments))')"
        } else {
            message = humanDescription(error)
        }
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return 1
    }

    /// Whether ArgumentParser raised `error` while parsing (its error types are not public).
    private static func isArgumentParserError(_ error: Error) -> Bool {
        String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }

    /// `mtp SUB [SUB] --help` for the subcommand the arguments name.
    private static func helpCommand(_ arguments: [String]) -> String {
        var words = ["mtp"]
        var level: [ParsableCommand.Type] = configuration.subcommands
        for a in arguments {
            guard let sub = level.first(where: { $0._commandName == a }) else { break }
            words.append(a)
            level = sub.configuration.subcommands
        }
        return (words + ["--help"]).joined(separator: " ")
    }
}

/// Lets `--lr -1` mean `--lr=-1`: ArgumentParser reads a word that starts with `-` as an
/// option name, so a negative number after an option would be "Missing value".
enum NegativeNumbers {
    /// `arguments` with every negative number that follows a `--name` (without `=`) joined to it.
    static func attached(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a.hasPrefix("--"), a.count > 2, !a.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
                out.append(a + "=" + arguments[i + 1])
                i += 2
            } else {
                out.append(a)
                i += 1
            }
        }
        return out
    }

    /// `-1`, `-0.5`, `-.5`, `-1e3`, `-inf`, `-nan` (no option of `mtp` has such a name).
    static func isNegativeNumber(_ word: String) -> Bool {
        guard word.hasPrefix("-"), !word.hasPrefix("--") else { return false }
        let rest = word.dropFirst()
        return Double(rest) != nil || rest.lowercased() == "inf" || rest.lowercased() == "nan"
    }
}

/// A one-line message for `error`: file-system errors as "path: reason" instead of
/// Foundation's `NSCocoaErrorDomain Code=512 … UserInfo={…}` dump.
func humanDescription(_ error: Error) -> String {
    let ns = error as NSError
    let text: String
    if ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain {
        let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        let reason = FileErrorReason.describe(error, path: path)
        text = path.map { "\($0.isEmpty ? "(empty path)" : $0): \(reason)" } ?? reason
    } else {
        text = "\(error)"
    }
    return printable(text)
}

/// One line a terminal shows as is: newlines become spaces, and every other control
/// character (C0, DEL, C1) is written as `\u{…}`, so a hostile name cannot move the cursor
/// or recolour the terminal.
func printable(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        switch scalar.value {
        case 0x0A, 0x0D: out.append(" ")
        case 0x09: out.append(scalar)
        case 0x00...0x1F, 0x7F...0x9F: out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
        default: out.append(scalar)
        }
    }
    return String(out)
}
