"""vmlab.mm"""
