"""Board profiles (JSON), shipped inside the wheel as the package ``tinygen._boards``."""
