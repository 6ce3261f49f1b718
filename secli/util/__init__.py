"""secli.util"""
