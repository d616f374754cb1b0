import ArgumentParser

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "A Bayeux (CometD/Faye) pub/sub broker.",
        subcommands: [Serve.self, Pub.self, Sub.self, Health.self],
        defaultSubcommand: nil
    )
}
