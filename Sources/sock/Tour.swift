import ArgumentParser
struct Tour: ParsableCommand {
    func run() throws {}
}
