/// Herald's version, as `/v1/stats` and `herald --version` report it.
public enum HeraldVersion {
    public static let current = "0.1.0-dev"
}
