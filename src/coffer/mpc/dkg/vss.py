"""Feldman VSS over a `DkgSuite`: polynomials, commitments, evaluation, Lagrange coefficients.

Pure arithmetic; identifiers are the x-coordinates of shares (non-zero integers). Commitments
may contain the identity (a sum of honest commitments can be the identity; refresh dealings
must commit to a zero constant term).
"""

from __future__ import annotations

from collections.abc import Sequence

from coffer.invariant import invariant
from coffer.mpc.dkg.suite import DkgSuite
from coffer.mpc.hazmat.group import Element

__all__ = ["polynomial_eval", "commit", "commitment_eval", "lagrange_coefficient"]


def polynomial_eval(coefficients: Sequence[int], x: int, order: int) -> int:
    """f(x) by Horner's rule, modulo `order`."""
    value = 0
    for coefficient in reversed(coefficients):
        value = (value * x + coefficient) % order
    return value


def commit(suite: DkgSuite, coefficients: Sequence[int]) -> tuple[Element, ...]:
    return tuple(suite.base_mul(coefficient) for coefficient in coefficients)


def commitment_eval(suite: DkgSuite, commitment: Sequence[Element], x: int) -> Element:
    """sum_j x^j * C_j: the public image of f(x)."""
    terms = [suite.mul(element, pow(x, j, suite.order)) for j, element in enumerate(commitment)]
    return suite.sum(terms)


def lagrange_coefficient(identifiers: Sequence[int], identifier: int, order: int) -> int:
    """lambda_i at zero for the set `identifiers` (distinct, non-zero)."""
    invariant(identifier in identifiers, "identifier must belong to the set")
    numerator, denominator = 1, 1
    for other in identifiers:
        if other == identifier:
            continue
        numerator = numerator * other % order
        denominator = denominator * (other - identifier) % order
    invariant(denominator != 0, "identifiers must be distinct modulo the order")
    return numerator * pow(denominator, -1, order) % order
