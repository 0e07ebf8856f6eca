"""vmlab.kernel"""
