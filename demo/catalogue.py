"""The demo catalogue: a primary school's class-corner books, as the corners really hold them.

Most copies carry a library accession label (14 digits: 3, institution, serial, Luhn) and
their printed ISBN; about one in seven is known only by its printed ISBN, including class
sets whose copies all share one barcode; a few old books print an ISBN-10. Reference books
(工具书) and magazines are there so that the in-room and periodical rules have something
to act on. Every ISBN is generated with a valid check digit by python-stdnum, so nothing
here can be mistaken for a typo, and titles are the ones a Chinese primary school has.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from stdnum import ean, luhn
from stdnum import isbn as stdnum_isbn

from bookcorner.circulation.model import Item, ItemType

#: the school's 4-digit institution code inside its 14-digit item barcodes
INSTITUTION = "0732"
#: share of single donated copies that never got a label
UNLABELLED_SHARE = 0.12
#: first accession serial (earlier numbers belong to the school library's main stock)
FIRST_SERIAL = 10_001

# Reading levels decide which class corners hold a book.
LOW, MID, HIGH, ALL = "1-2", "3-4", "5-6", "1-6"

#: (title, author, CLC class, level): the circulating stock, one record per edition
WORKS: tuple[tuple[str, str, str, str], ...] = (
    # 图画书 and early readers
    ("小蝌蚪找妈妈", "方惠珍 盛璐德", "I287.8", LOW),
    ("小猫钓鱼", "金近", "I287.8", LOW),
    ("一园青菜成了精", "周翔", "I287.8", LOW),
    ("荷花镇的早市", "周翔", "I287.8", LOW),
    ("团圆", "余丽琼", "I287.8", LOW),
    ("老鼠娶新娘", "张玲玲", "I287.8", LOW),
    ("猜猜我有多爱你", "[英]山姆·麦克布雷尼", "I561.85", LOW),
    ("我爸爸", "[英]安东尼·布朗", "I561.85", LOW),
    ("我妈妈", "[英]安东尼·布朗", "I561.85", LOW),
    ("獾的礼物", "[英]苏珊·华莱", "I561.85", LOW),
    ("大卫，不可以", "[美]大卫·香农", "I712.85", LOW),
    ("好饿的毛毛虫", "[美]艾瑞·卡尔", "I712.85", LOW),
    ("逃家小兔", "[美]玛格丽特·怀兹·布朗", "I712.85", LOW),
    ("母鸡萝丝去散步", "[英]佩特·哈群斯", "I561.85", LOW),
    ("花婆婆", "[美]芭芭拉·库尼", "I712.85", LOW),
    ("爷爷一定有办法", "[加]菲比·吉尔曼", "I711.85", LOW),
    ("活了100万次的猫", "[日]佐野洋子", "I313.85", LOW),
    ("鼠小弟的小背心", "[日]中江嘉男", "I313.85", LOW),
    ("14只老鼠大搬家", "[日]岩村和朗", "I313.85", LOW),
    ("我的爸爸叫焦尼", "[瑞典]波·R·汉伯格", "I532.85", LOW),
    ("不一样的卡梅拉·我想去看海", "[法]克利斯提昂·约里波瓦", "I565.85", LOW),
    ("不一样的卡梅拉·我想有颗星星", "[法]克利斯提昂·约里波瓦", "I565.85", LOW),
    ("不一样的卡梅拉·我去找回太阳", "[法]克利斯提昂·约里波瓦", "I565.85", LOW),
    ("巴巴爸爸的诞生", "[法]安娜特·缇森", "I565.85", LOW),
    ("鼹鼠的故事·鼹鼠和汽车", "[捷克]兹德涅克·米勒", "I524.85", LOW),
    ("儿歌三百首", "金波 编", "I287.2", LOW),
    ("日有所诵·一年级", "薛瑞萍 编", "I287.2", LOW),
    ("日有所诵·二年级", "薛瑞萍 编", "I287.2", LOW),
    # 童话
    ("小猪唏哩呼噜", "孙幼军", "I287.5", LOW),
    ("小布头奇遇记", "孙幼军", "I287.5", LOW),
    ("小鲤鱼跳龙门", "金近", "I287.5", LOW),
    ("没头脑和不高兴", "任溶溶", "I287.5", LOW),
    ("一只想飞的猫", "陈伯吹", "I287.5", LOW),
    ("孤独的小螃蟹", "冰波", "I287.5", LOW),
    ("阿笨猫", "冰波", "I287.5", LOW),
    ("蓝鲸的眼睛", "冰波", "I287.5", MID),
    ("歪脑袋木头桩", "严文井", "I287.5", LOW),
    ("神笔马良", "洪汛涛", "I287.5", LOW),
    ("小巴掌童话", "张秋生", "I287.5", LOW),
    ("笨狼的故事", "汤素兰", "I287.5", LOW),
    ("大头儿子和小头爸爸", "郑春华", "I287.5", LOW),
    ("舒克和贝塔", "郑渊洁", "I287.5", MID),
    ("皮皮鲁传", "郑渊洁", "I287.5", MID),
    ("稻草人", "叶圣陶", "I287.5", MID),
    ("大林和小林", "张天翼", "I287.5", MID),
    ("宝葫芦的秘密", "张天翼", "I287.5", MID),
    ("小狐狸买手套", "[日]新美南吉", "I313.88", LOW),
    ("晴天有时下猪", "[日]矢玉四郎", "I313.88", MID),
    ("安徒生童话", "[丹麦]安徒生", "I534.88", ALL),
    ("格林童话", "[德]格林兄弟", "I516.88", ALL),
    ("伊索寓言", "[古希腊]伊索", "I545.74", MID),
    ("小王子", "[法]圣埃克苏佩里", "I565.88", MID),
    ("木偶奇遇记", "[意]科洛迪", "I546.88", MID),
    ("小熊维尼", "[英]A.A.米尔恩", "I561.88", LOW),
    ("彼得兔的故事", "[英]毕翠克丝·波特", "I561.88", LOW),
    ("一千零一夜", "佚名", "I371.73", HIGH),
    # 儿童小说
    ("米小圈上学记·我是小学生", "北猫", "I287.45", LOW),
    ("米小圈上学记·小顽童大烦恼", "北猫", "I287.45", MID),
    ("淘气包马小跳·贪玩老爸", "杨红樱", "I287.45", MID),
    ("淘气包马小跳·轰隆隆老师", "杨红樱", "I287.45", MID),
    ("淘气包马小跳·四个调皮蛋", "杨红樱", "I287.45", MID),
    ("淘气包马小跳·笨女孩安琪儿", "杨红樱", "I287.45", MID),
    ("笑猫日记·保姆狗的阴谋", "杨红樱", "I287.45", MID),
    ("笑猫日记·想变成人的猴子", "杨红樱", "I287.45", MID),
    ("笑猫日记·寻找黑骑士", "杨红樱", "I287.45", MID),
    ("女生日记", "杨红樱", "I287.45", HIGH),
    ("男生日记", "杨红樱", "I287.45", HIGH),
    ("草房子", "曹文轩", "I287.45", HIGH),
    ("青铜葵花", "曹文轩", "I287.45", HIGH),
    ("根鸟", "曹文轩", "I287.45", HIGH),
    ("山羊不吃天堂草", "曹文轩", "I287.45", HIGH),
    ("狼王梦", "沈石溪", "I287.45", HIGH),
    ("第七条猎狗", "沈石溪", "I287.45", HIGH),
    ("最后一头战象", "沈石溪", "I287.47", HIGH),
    ("斑羚飞渡", "沈石溪", "I287.47", HIGH),
    ("小英雄雨来", "管桦", "I287.45", MID),
    ("小兵张嘎", "徐光耀", "I287.45", HIGH),
    ("闪闪的红星", "李心田", "I287.45", HIGH),
    ("鸡毛信", "华山", "I287.47", MID),
    ("乌丢丢的奇遇", "金波", "I287.45", MID),
    ("装在口袋里的爸爸·神奇的鸟蛋", "杨鹏", "I287.45", MID),
    ("故宫里的大怪兽·吻兽大冒险", "常怡", "I287.45", MID),
    ("小灵通漫游未来", "叶永烈", "I287.45", MID),
    ("夏洛的网", "[美]E.B.怀特", "I712.84", MID),
    ("精灵鼠小弟", "[美]E.B.怀特", "I712.84", MID),
    ("吹小号的天鹅", "[美]E.B.怀特", "I712.84", MID),
    ("时代广场的蟋蟀", "[美]乔治·塞尔登", "I712.84", MID),
    ("绿野仙踪", "[美]弗兰克·鲍姆", "I712.84", MID),
    ("长袜子皮皮", "[瑞典]阿斯特丽德·林格伦", "I532.84", MID),
    ("小飞人卡尔松", "[瑞典]阿斯特丽德·林格伦", "I532.84", MID),
    ("尼尔斯骑鹅旅行记", "[瑞典]塞尔玛·拉格洛夫", "I532.84", HIGH),
    ("了不起的狐狸爸爸", "[英]罗尔德·达尔", "I561.84", MID),
    ("查理和巧克力工厂", "[英]罗尔德·达尔", "I561.84", MID),
    ("柳林风声", "[英]肯尼斯·格雷厄姆", "I561.84", HIGH),
    ("窗边的小豆豆", "[日]黑柳彻子", "I313.45", MID),
    ("爱的教育", "[意]亚米契斯", "I546.44", HIGH),
    ("鲁滨逊漂流记", "[英]笛福", "I561.44", HIGH),
    ("汤姆·索亚历险记", "[美]马克·吐温", "I712.44", HIGH),
    ("海底两万里", "[法]儒勒·凡尔纳", "I565.44", HIGH),
    ("童年", "[苏]高尔基", "I512.45", HIGH),
    ("城南旧事", "林海音", "I246.5", HIGH),
    # 散文、诗歌、古典
    ("寄小读者", "冰心", "I266", HIGH),
    ("繁星·春水", "冰心", "I226", HIGH),
    ("小橘灯", "冰心", "I266", MID),
    ("朝花夕拾", "鲁迅", "I210.4", HIGH),
    ("给孩子的诗", "北岛 编", "I12", HIGH),
    ("假如给我三天光明", "[美]海伦·凯勒", "I712.65", HIGH),
    ("唐诗三百首（注音版）", "蘅塘退士 编", "I222.742", ALL),
    ("小学生必背古诗词75+80首", "本书编写组", "I222", ALL),
    ("宋词三百首", "上彊村民 编", "I222.844", HIGH),
    ("三字经·百家姓·千字文", "佚名", "H194.1", LOW),
    ("弟子规（注音版）", "李毓秀", "H194.1", LOW),
    ("声律启蒙", "车万育", "H194.1", MID),
    ("笠翁对韵", "李渔", "H194.1", MID),
    ("论语（少儿版）", "孔子弟子及再传弟子", "B222.2", HIGH),
    ("西游记（青少版）", "吴承恩", "I242.4", MID),
    ("三国演义（青少版）", "罗贯中", "I242.4", HIGH),
    ("水浒传（青少版）", "施耐庵", "I242.4", HIGH),
    ("红楼梦（青少版）", "曹雪芹", "I242.4", HIGH),
    ("中国神话传说", "袁珂", "I277.5", MID),
    ("中国民间故事", "本书编写组", "I277.3", MID),
    ("中国古代寓言故事", "本书编写组", "I277.4", MID),
    ("中华成语故事", "本书编写组", "H136.31", MID),
    ("中国传统节日故事", "本书编写组", "K892.1", LOW),
    # 历史、人物
    ("上下五千年", "林汉达 曹余章", "K209", HIGH),
    ("写给儿童的中国历史", "陈卫平", "K209", MID),
    ("中国少年英雄故事", "本书编写组", "K820.7", MID),
    ("雷锋的故事", "陈广生", "K828.2", MID),
    ("居里夫人传", "[法]艾芙·居里", "K835.656.13", HIGH),
    ("中外名人故事", "本书编写组", "K811", MID),
    # 科普
    ("十万个为什么·动物", "少年儿童出版社 编", "Z228.1", ALL),
    ("十万个为什么·植物", "少年儿童出版社 编", "Z228.1", ALL),
    ("十万个为什么·天文", "少年儿童出版社 编", "Z228.1", ALL),
    ("十万个为什么·地球", "少年儿童出版社 编", "Z228.1", ALL),
    ("十万个为什么·人体", "少年儿童出版社 编", "Z228.1", ALL),
    ("昆虫记", "[法]法布尔", "Q96-49", HIGH),
    ("灰尘的旅行", "高士其", "N49", MID),
    ("细菌世界历险记", "高士其", "Q939-49", HIGH),
    ("看看我们的地球", "李四光", "P-49", HIGH),
    ("爷爷的爷爷从哪里来", "贾兰坡", "Q981.1-49", MID),
    ("森林报·春", "[苏]维·比安基", "I512.84", MID),
    ("森林报·夏", "[苏]维·比安基", "I512.84", MID),
    ("森林报·秋", "[苏]维·比安基", "I512.84", MID),
    ("森林报·冬", "[苏]维·比安基", "I512.84", MID),
    ("神奇校车·在人体中游览", "[美]乔安娜·柯尔", "Z228.1", MID),
    ("神奇校车·水的故事", "[美]乔安娜·柯尔", "Z228.1", MID),
    ("可怕的科学·肚子里的恶心事儿", "[英]尼克·阿诺德", "N49", HIGH),
    ("数学西游记", "李毓佩", "O1-49", MID),
    ("奇妙的数王国", "李毓佩", "O1-49", MID),
    ("数学司令", "李毓佩", "O1-49", HIGH),
    ("汉字的故事", "本书编写组", "H12", MID),
    # 漫画
    ("三毛流浪记", "张乐平", "J228.2", MID),
    ("父与子", "[德]埃·奥·卜劳恩", "J238.2", ALL),
    ("阿衰·课堂笑料多", "猫小乐", "J228.2", MID),
)

#: copies a class bought as a set, without labels: several copies behind one printed ISBN
CLASS_SETS: tuple[tuple[str, int], ...] = (
    ("小猪唏哩呼噜", 4),
    ("夏洛的网", 3),
    ("米小圈上学记·我是小学生", 3),
    ("十万个为什么·动物", 2),
    ("狼王梦", 2),
    ("好饿的毛毛虫", 2),
)

#: (title, author, CLC class, level): 1990s editions whose printed barcode is an ISBN-10
OLD_EDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("小兵张嘎（1995年版）", "徐光耀", "I287.45", HIGH),
    ("雷锋的故事（1993年版）", "陈广生", "K828.2", MID),
    ("鸡毛信（1996年版）", "华山", "I287.47", MID),
)

#: (title, author, ISBN-13 prefix up to the title number): English readers
ENGLISH_READERS: tuple[tuple[str, str, str], ...] = (
    ("Brown Bear, Brown Bear, What Do You See?", "Bill Martin Jr.", "97808050"),
    ("Go, Dog. Go!", "P. D. Eastman", "9780394"),
    ("Biscuit", "Alyssa Satin Capucilli", "978006"),
)

#: (title, author, CLC class, copies): 工具书, in-room use only, all labelled
REFERENCE_WORKS: tuple[tuple[str, str, str, int], ...] = (
    ("新华字典（第12版）", "中国社会科学院语言研究所", "H163", 4),
    ("现代汉语词典（第7版）", "中国社会科学院语言研究所词典编辑室", "H164", 1),
    ("新华成语词典", "商务印书馆辞书研究中心", "H136.31", 1),
    ("小学生近义词反义词词典", "商务印书馆辞书研究中心", "H136.1", 1),
    ("小学生英汉词典", "本书编写组", "H316", 1),
    ("中国少年儿童百科全书", "林崇德 主编", "Z228.1", 1),
    ("中国地图册", "中国地图出版社 编", "K992", 1),
)

#: (magazine, level): one recent issue of each, labelled, no ISBN (magazines have an ISSN)
PERIODICALS: tuple[tuple[str, str], ...] = (
    ("儿童文学", HIGH),
    ("少年文艺", HIGH),
    ("我们爱科学", MID),
    ("小学生时代", MID),
    ("中国少年儿童", ALL),
    ("故事大王", MID),
    ("小猕猴智力画刊", LOW),
    ("东方少年", HIGH),
    ("少年科学画报", MID),
    ("儿童文学", MID),
)

#: ISBN-13 prefixes up to the title number (978-7 plus the publisher code), with weights
CHILDRENS_PUBLISHERS: tuple[tuple[str, int], ...] = (
    ("97875007", 5),  # 中国少年儿童出版社
    ("97875324", 4),  # 少年儿童出版社
    ("97875342", 4),  # 浙江少年儿童出版社
    ("97875448", 3),  # 接力出版社
    ("97875391", 3),  # 二十一世纪出版社
    ("97875307", 2),  # 新蕾出版社
    ("97875560", 2),  # 长江少年儿童出版社
    ("97875365", 2),  # 四川少年儿童出版社
    ("97875332", 2),  # 明天出版社
    ("9787020", 2),  # 人民文学出版社
)
#: 商务印书馆, the dictionaries' publisher
COMMERCIAL_PRESS = "9787100"


def isbn13_with_check(first12: str) -> str:
    return first12 + ean.calc_check_digit(first12)


def library_barcode(serial: int) -> str:
    """A 14-digit item barcode: 3, institution, 8-digit serial, Luhn check digit."""
    body = f"3{INSTITUTION}{serial:08d}"
    return body + luhn.calc_check_digit(body)


def classes_for(level: str, class_names: tuple[str, ...]) -> tuple[str, ...]:
    first, last = (int(g) for g in level.split("-"))
    return tuple(c for c in class_names if first <= int(c.split("-")[0]) <= last)


class _Isbns:
    """Unique, valid ISBN-13s (and the demo's unknown one) from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def new(self, prefix: str, check: Callable[[str], bool] = lambda _: True) -> str:
        while True:
            title_digits = 12 - len(prefix)
            first12 = prefix + f"{self.rng.randrange(10**title_digits):0{title_digits}d}"
            isbn13 = isbn13_with_check(first12)
            if isbn13 not in self.used and check(isbn13):
                self.used.add(isbn13)
                return isbn13

    def childrens(self) -> str:
        prefixes = [p for p, _ in CHILDRENS_PUBLISHERS]
        weights = [w for _, w in CHILDRENS_PUBLISHERS]
        return self.new(self.rng.choices(prefixes, weights)[0])


def isbn10_or_none(isbn13: str) -> str | None:
    return stdnum_isbn.to_isbn10(isbn13) if isbn13.startswith("978") else None


@dataclass(frozen=True, slots=True)
class Catalogue:
    items: tuple[Item, ...]
    #: item ids of the class sets (each several unlabelled copies of one ISBN)
    class_sets: tuple[tuple[str, ...], ...]
    old_editions: tuple[str, ...]
    #: a valid 978-7 ISBN-13 that no item carries
    unknown_isbn13: str


class _Builder:
    def __init__(self, class_names: tuple[str, ...], rng: random.Random) -> None:
        self.class_names = class_names
        self.rng = rng
        self.isbns = _Isbns(rng)
        self.items: list[Item] = []
        self.serial = FIRST_SERIAL
        #: next book mark (种次号) per CLC class
        self.marks: defaultdict[str, int] = defaultdict(int)

    def call_number(self, clc: str) -> str:
        self.marks[clc] += 1
        return f"{clc}/{self.marks[clc]}"

    def add(self, title: str, labelled: bool, corner: str, **fields: object) -> str:
        item_id = f"I{len(self.items) + 1:05d}"
        barcode = None
        if labelled:
            barcode = library_barcode(self.serial)
            self.serial += 1
        given = fields.pop("isbn13", None)
        isbn13 = given if isinstance(given, str) else None
        isbn10 = isbn10_or_none(isbn13) if isbn13 is not None else None
        self.items.append(
            Item(item_id=item_id, title=title, barcode=barcode, isbn13=isbn13, isbn10=isbn10,
                 home_corner=corner, **fields)  # type: ignore[arg-type]
        )
        return item_id

    def corner(self, level: str) -> str:
        return self.rng.choice(classes_for(level, self.class_names))


def build_catalogue(class_names: tuple[str, ...], today: date, seed: str) -> Catalogue:
    """The catalogue. Everything but the magazine issues is independent of ``today``, so
    the demo's book codes stay the same from one day (and one year) to the next."""
    b = _Builder(class_names, random.Random(seed))
    sets = dict(CLASS_SETS)
    class_sets: list[tuple[str, ...]] = []
    for title, author, clc, level in WORKS:
        isbn13 = b.isbns.childrens()
        call_number = b.call_number(clc)
        common = dict(isbn13=isbn13, author=author, call_number=call_number)
        if title in sets:
            corner = b.corner(level)
            class_sets.append(tuple(b.add(title, False, corner, **common) for _ in range(sets[title])))
            # and sometimes a labelled copy of the same edition elsewhere
            if b.rng.random() < 0.3:
                b.add(title, True, b.corner(level), **common)
            continue
        copies = b.rng.choices((1, 2, 3, 4), weights=(35, 40, 20, 5))[0]
        for _ in range(copies):
            # donated copies often arrive without a label and stay that way
            b.add(title, b.rng.random() >= UNLABELLED_SHARE, b.corner(level), **common)
    old: list[str] = []
    for index, (title, author, clc, level) in enumerate(OLD_EDITIONS):
        prefix = b.rng.choice(("97875007", "97870", "97875324"))
        # the first ends in X, so that a newcomer sees the ISBN-10 check letter work
        wants_x = (lambda i13: stdnum_isbn.to_isbn10(i13).endswith("X")) if index == 0 else (lambda _: True)
        isbn13 = b.isbns.new(prefix, wants_x)
        old.append(b.add(title, False, b.corner(level), isbn13=isbn13, author=author, call_number=b.call_number(clc)))
    for title, author, prefix in ENGLISH_READERS:
        isbn13 = b.isbns.new(prefix)
        b.add(title, True, b.corner("3-6"), isbn13=isbn13, author=author, call_number=b.call_number("H319.4"))
    for title, author, clc, copies in REFERENCE_WORKS:
        isbn13 = b.isbns.new(COMMERCIAL_PRESS)
        call_number = b.call_number(clc)
        corners = b.rng.sample(class_names, copies) if copies > 1 else (b.corner(HIGH),)
        for corner in corners:
            b.add(title, True, corner, isbn13=isbn13, author=author, call_number=call_number,
                  item_type=ItemType.REFERENCE)
    for index, (magazine, level) in enumerate(PERIODICALS):
        issue = _recent_issue(today, months_back=index % 4)
        b.add(f"{magazine} {issue}", True, b.corner(level), item_type=ItemType.PERIODICAL)
    unknown = b.isbns.new("97875007")
    return Catalogue(tuple(b.items), tuple(class_sets), tuple(old), unknown)


def _recent_issue(today: date, months_back: int) -> str:
    """A monthly issue label such as 2026年第3期, ``months_back`` months before ``today``'s."""
    month_index = today.year * 12 + today.month - 1 - months_back
    year, month = divmod(month_index, 12)
    return f"{year}年第{month + 1}期"
