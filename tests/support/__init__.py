"""What the tests share: the test world, fake kernel, case definitions and file builders.

Test modules import from here and never from each other.
"""
