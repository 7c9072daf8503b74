"""The accelerator's Amaranth components, parameterised by a hardware configuration and a
compiled program (docs/architecture.md). Nothing here knows a frontend or a file format."""
