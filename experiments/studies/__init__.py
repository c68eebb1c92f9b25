"""What a user studies: one package (or module) per experiment."""
