import ArgumentParser
struct Scan: ParsableCommand {
    func run() throws {}
}
