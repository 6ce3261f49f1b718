"""secli.excitation"""
