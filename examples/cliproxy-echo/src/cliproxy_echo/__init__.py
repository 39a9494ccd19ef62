"""Example cliproxy provider plugin: a local ``echo`` provider that needs no network and no account."""
