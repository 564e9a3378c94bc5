import ArgumentParser
import Foundation

/// Runs a command's body; any error but an exit code becomes one `error: …` line on
/// stderr and exit status 1 (the CLI contract: bad input never traps, nothing on stdout).
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let exit as ExitCode { throw exit } catch {
        let message = humanDescription(error)
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        throw ExitCode(1)
    }
}
