"""secli.training"""
