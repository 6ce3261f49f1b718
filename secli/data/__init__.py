"""secli.data"""
