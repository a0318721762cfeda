import ArgumentParser
import GGUF

/// `sputnik info --model FILE`: prints a GGUF file's metadata and tensor table.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a GGUF file's metadata and tensors.")

    @Option(name: [.customShort("m"), .long], help: "Path of the GGUF file.")
    var model: String

    @Flag(help: "Also list every tensor.")
    var tensors = false

    func run() throws {
        let f = try GGUFFile(path: model)
        print("GGUF v\(f.version), \(f.tensors.count) tensors, \(f.metadata.count) metadata keys, data at \(f.dataOffset)")
        for k in f.keys { print("  \(k) = \(f.metadata[k]!.summary)") }
        if tensors {
            for t in f.tensors { print("  \(t.name) \(t.dimensions) \(t.type)") }
        }
    }
}
