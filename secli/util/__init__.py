"""What every layer above may use: errors, atomic outputs, the device resolver, the DDP
lifecycle, the YAML reader, number lists, tensor helpers and the option vocabulary."""
