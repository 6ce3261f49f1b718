"""secli.profiling"""
