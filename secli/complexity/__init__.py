"""secli.complexity"""
