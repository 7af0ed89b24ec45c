"""The command line: a consumer of the library, like the app."""
