"""vmlab.hw"""
