"""core.aliases: the user's names for a patched function, found once and found again on change."""

from types import ModuleType

from dafx_testing.core.aliases import alias_sites


def target():
    return "the function a seam patches"


def module(name, **names):
    made = ModuleType(name)
    vars(made).update(names)
    return made


def test_names_bound_to_the_target_are_found_in_every_module():
    first, second = module("first", now=target, other=len), module("second", again=target)

    sites = alias_sites("found", [first, second], {id(target)})

    assert sites == [(first, "now"), (second, "again")]


def test_a_module_that_gains_a_name_is_read_again_and_one_rebound_in_place_is_not():
    user = module("gains", now=target)
    modules = [user]
    assert alias_sites("gains", modules, {id(target)}) == [(user, "now")]

    user.later = target                          # a name added: the namespace grew
    assert alias_sites("gains", modules, {id(target)}) == [(user, "now"), (user, "later")]

    user.now = len                               # rebound in place: same size, same sites
    assert alias_sites("gains", modules, {id(target)}) == [(user, "now"), (user, "later")]


def test_another_list_of_modules_is_read_afresh():
    before, after = module("before", now=target), module("after", then=target)

    assert alias_sites("lists", [before], {id(target)}) == [(before, "now")]
    assert alias_sites("lists", [after], {id(target)}) == [(after, "then")]


def test_the_names_found_stay_the_sites_whatever_a_later_block_patches():
    user = module("nested", now=target)
    modules = [user]
    assert alias_sites("nested", modules, {id(target)}) == [(user, "now")]

    def outer_replacement():
        return "what an outer seam put there"

    user.now = outer_replacement                 # a seam nested in another meets its replacement
    assert alias_sites("nested", modules, {id(outer_replacement)}) == [(user, "now")]
