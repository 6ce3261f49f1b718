"""secli.build"""
