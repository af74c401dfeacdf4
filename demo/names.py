"""Chinese names for the demo roster.

Surnames carry rough weights (per ten thousand people) so that a class of thirty has
the several 王, 李 and 张 a real class has, and the odd 欧阳. Children's given names are
the ones common for children born 2014-2020; teachers get their parents' generation's.
All immutable: the same draw from the same seed gives the same school.
"""

from __future__ import annotations

import random
from itertools import accumulate

#: (surname, approximate share per ten thousand)
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 710), ("李", 700), ("张", 670), ("刘", 540), ("陈", 450), ("杨", 310),
    ("黄", 210), ("赵", 200), ("吴", 200), ("周", 190), ("徐", 130), ("孙", 120),
    ("马", 120), ("朱", 110), ("胡", 100), ("郭", 100), ("何", 90), ("高", 90),
    ("林", 90), ("罗", 80), ("郑", 80), ("梁", 70), ("谢", 60), ("宋", 50),
    ("唐", 50), ("许", 50), ("韩", 50), ("冯", 50), ("邓", 40), ("曹", 40),
    ("彭", 40), ("曾", 40), ("肖", 40), ("田", 40), ("董", 40), ("袁", 30),
    ("潘", 30), ("于", 30), ("蒋", 30), ("蔡", 30), ("余", 30), ("杜", 30),
    ("叶", 30), ("程", 30), ("苏", 30), ("魏", 30), ("吕", 30), ("丁", 30),
    ("任", 30), ("沈", 30), ("姚", 20), ("卢", 20), ("姜", 20), ("崔", 20),
    ("钟", 20), ("谭", 20), ("陆", 20), ("汪", 20), ("范", 20), ("金", 20),
    ("石", 20), ("廖", 20), ("贾", 20), ("夏", 20), ("韦", 20), ("付", 20),
    ("方", 20), ("白", 20), ("邹", 20), ("孟", 20), ("熊", 20), ("秦", 20),
    ("邱", 20), ("江", 20), ("尹", 20), ("薛", 10), ("闫", 10), ("段", 10),
    ("雷", 10), ("侯", 10), ("龙", 10), ("史", 10), ("陶", 10), ("黎", 10),
    ("贺", 10), ("顾", 10), ("毛", 10), ("郝", 10), ("龚", 10), ("邵", 10),
    ("万", 10), ("钱", 10), ("严", 10), ("武", 10), ("戴", 10), ("莫", 10),
    ("孔", 10), ("汤", 10), ("欧阳", 3), ("司马", 1), ("上官", 1), ("诸葛", 1),
)

_SURNAME_VALUES: tuple[str, ...] = tuple(s for s, _ in SURNAMES)
_SURNAME_CUMULATIVE: tuple[int, ...] = tuple(accumulate(w for _, w in SURNAMES))

CHILD_GIVEN_NAMES: tuple[str, ...] = (
    # two characters, the great majority
    "子轩", "浩宇", "宇轩", "浩然", "梓睿", "俊熙", "皓轩", "子墨", "一鸣", "铭泽",
    "奕辰", "沐宸", "宇航", "思远", "博文", "天佑", "锦程", "嘉懿", "煜祺", "睿泽",
    "明轩", "俊杰", "泽宇", "晨阳", "子豪", "家豪", "雨泽", "瑞霖", "鸿涛", "宇辰",
    "承泽", "昊然", "逸凡", "文博", "梓豪", "一航", "子健", "景行", "星辰", "嘉乐",
    "梓涵", "欣怡", "一诺", "诗涵", "雨桐", "梓萱", "子涵", "若汐", "语桐", "思彤",
    "依诺", "可馨", "嘉怡", "欣妍", "佳琪", "晨曦", "语嫣", "雨萱", "芷若", "梦琪",
    "紫萱", "诗琪", "婉清", "可欣", "安琪", "欣然", "心怡", "雅琪", "思琪", "梓琪",
    "馨月", "沐瑶", "一涵", "若曦", "书瑶", "静怡", "语汐", "佳怡", "乐瑶", "艺涵",
    "小明", "小雨", "小宇", "小雪", "小龙", "小萌", "天乐", "子昂", "明哲", "安然",
)

CHILD_SINGLE_NAMES: tuple[str, ...] = (
    "睿", "轩", "涵", "悦", "晨", "琪", "瑶", "昊", "鑫", "淼",
    "彤", "哲", "博", "楠", "洋", "琳", "航", "婷", "杰", "磊",
)

ADULT_GIVEN_NAMES: tuple[str, ...] = (
    "丽华", "建军", "秀英", "晓燕", "海燕", "静", "敏", "芳", "伟", "磊",
    "红梅", "玉兰", "春燕", "志强", "文静", "雪梅", "丽娟", "婷", "颖", "慧",
    "洁", "霞", "晓红", "建华", "国庆", "凤英", "桂芳", "亚楠", "晓丽", "军",
)

#: share of children with a one-character given name
SINGLE_NAME_SHARE = 0.12


def surname(rng: random.Random) -> str:
    return rng.choices(_SURNAME_VALUES, cum_weights=_SURNAME_CUMULATIVE)[0]


def child_name(rng: random.Random) -> tuple[str, str]:
    """(full name, given name), e.g. ("王小明", "小明")."""
    given = rng.choice(CHILD_SINGLE_NAMES if rng.random() < SINGLE_NAME_SHARE else CHILD_GIVEN_NAMES)
    return surname(rng) + given, given


def adult_name(rng: random.Random) -> str:
    return surname(rng) + rng.choice(ADULT_GIVEN_NAMES)
