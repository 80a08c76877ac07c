"""Tables for the synthetic population: names, characters, keyboard, places, organisations.

Kept apart from :mod:`bench.population` so the generator reads as logic.
Family name shares are rounded from published census tables (the top 20);
the rest share what remains. Given-name characters are drawn with a Zipf-like
weight, so a handful of characters (伟, 芳, 丽, 英 ...) are common, as they are.
"""

from __future__ import annotations

from functools import cache

from pypinyin import Style, lazy_pinyin

_TOP_SURNAMES = (
    ("王", 7.1), ("李", 7.0), ("张", 6.4), ("刘", 5.3), ("陈", 4.5), ("杨", 3.1), ("黄", 2.0),
    ("赵", 2.0), ("吴", 1.9), ("周", 1.9), ("徐", 1.4), ("孙", 1.3), ("马", 1.2), ("朱", 1.1),
    ("胡", 1.1), ("郭", 1.1), ("何", 0.9), ("林", 0.9), ("高", 0.9), ("罗", 0.9),
)  # fmt: skip
_OTHER_SURNAMES = (
    "郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石"
    "廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "皇甫", "东方", "慕容", "令狐")
SURNAMES: tuple[str, ...] = (
    *(s for s, _ in _TOP_SURNAMES),
    *_OTHER_SURNAMES,
    *_COMPOUND_SURNAMES,
)
_TOP_SHARE = sum(w for _, w in _TOP_SURNAMES)
SURNAME_WEIGHTS: tuple[float, ...] = (
    *(w for _, w in _TOP_SURNAMES),
    *((99.0 - _TOP_SHARE) / len(_OTHER_SURNAMES) for _ in _OTHER_SURNAMES),
    *(1.0 / len(_COMPOUND_SURNAMES) for _ in _COMPOUND_SURNAMES),
)

_MALE = (
    "伟强磊军勇杰涛明超刚平辉鹏华飞斌宇浩俊建国文博志德海林峰晨鑫波宏东亮龙成兵坤光"
    "立新永健洋春晓翔凯彬阳帅宁瑞子轩泽睿昊天然铭嘉一航宸皓逸昕伦松振庆锋江"
)
_FEMALE = (
    "芳娜秀英敏静丽艳娟霞玲桂兰萍红燕梅琳婷雪倩慧颖晶欣怡思雨涵诗琪佳悦萱妍璐瑶"
    "梓馨彤月琴莉丹凤洁玉莹蕾薇露媛晴菲雅婧岚淑珍荣婉清蓉冰文佩"
)


def _zipf(pool: str, exponent: float = 0.9) -> tuple[tuple[str, ...], tuple[float, ...]]:
    chars = tuple(dict.fromkeys(pool))
    return chars, tuple(1.0 / (rank + 1) ** exponent for rank in range(len(chars)))


GIVEN = {"MALE": _zipf(_MALE), "FEMALE": _zipf(_FEMALE)}
GIVEN_ALL: tuple[str, ...] = tuple(dict.fromkeys(_MALE + _FEMALE))

# Common characters an input method offers: where homophone and adjacent-key slips land.
COMMON_CHARS: tuple[str, ...] = tuple(
    dict.fromkeys(
        _MALE + _FEMALE + _OTHER_SURNAMES + "".join(s for s, _ in _TOP_SURNAMES) + "玮炜薇蔚维威卫"
        "微为魏婧菁精京敬境景晗寒韩汉翰瀚含昊皓豪好号君骏峻均钧锋枫丰风莉俐力立利理礼黎铭鸣名"
        "茗民敏闽珊姗山善衫杉彬滨宾斌冰兵秉炳饼并病乐悦越跃岳阅粤月约宇雨语羽玉育遇予余鱼於于"
        "虞愉娱榆渝瑜嘉佳家加夹甲假价驾架婷亭庭廷停挺霆颖英鹰莹盈迎营荣容蓉融溶戎晓小笑校孝肖"
        "效啸涛桃陶淘滔韬焘海亥骇害新欣心馨辛芯鑫信兴星杏幸性姓刑形型行醒平萍评凭瓶苹坪屏洁杰"
        "捷杰节结劫婕芳方房放防访仿纺红宏洪虹鸿弘泓轰哄华花化画桦骅话滑铧娜纳那拿呐钠建健剑"
        "见件坚监简减检俭鉴舰静竞竟净径境镜晶经惊睛景井颈警志智至治质致制置芝之知枝支只汁直"
        "植值执职侄止旨指纸峰蜂锋封疯烽凤奉逢冯缝讽军君均钧俊郡峻骏竣菌浚珺明铭鸣名冥茗命"
        "丽力立利例粒莉俐荔砾厉历励隶雷磊蕾垒累泪类擂勇永泳咏涌踊用庸拥雍"
    )
)


@cache
def pinyin_of(char: str) -> str:
    """Toneless pinyin of one character."""
    return lazy_pinyin(char, style=Style.NORMAL)[0]


# Neighbouring keys on a QWERTY keyboard (full pinyin is typed on one).
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _i, _key in enumerate(_row):
        _near = [_row[j] for j in (_i - 1, _i + 1) if 0 <= j < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_ROWS):
                _near += [_ROWS[_other][j] for j in (_i - 1, _i) if 0 <= j < len(_ROWS[_other])]
        KEYBOARD_NEIGHBOURS[_key] = "".join(_near)

_TRADITIONAL = str.maketrans(
    "伟张刘陈杨黄赵吴孙马郑罗谢韩冯邓许苏叶钟卢陆华国军东丽红飞鹏辉兰凤龙宝贵庆爱乐云刚强"
    "杰涛伦娇丰锋峰宁晓阳帅颖静婧玲琳萍梅莹荣浩鑫亮凯",
    "偉張劉陳楊黃趙吳孫馬鄭羅謝韓馮鄧許蘇葉鍾盧陸華國軍東麗紅飛鵬輝蘭鳳龍寶貴慶愛樂雲剛強"
    "傑濤倫嬌豐鋒峰寧曉陽帥穎靜婧玲琳萍梅瑩榮浩鑫亮凱",
)


def traditional(text: str) -> str:
    """The text with the characters we know in traditional form (others unchanged)."""
    return text.translate(_TRADITIONAL)


MOBILE_PREFIXES = ("130", "131", "135", "136", "138", "139", "150", "152", "158", "177", "186")


# Mainland prefecture- and county-level codes: where people live and firms register. Frozen
# (they were the prefecture and county rows of schemas/data/cn_divisions.csv when that
# shipped 120 codes), so that a fuller division list does not change the population a
# seed gives: the existing benchmarks' reference. All are current GB/T 2260 codes.
_DIVISION_CODES = """
110100 120100 130100 130200 140100 150100 210100 210200 220100 230100 310100 320100 320200
320500 330100 330200 340100 350100 350200 360100 370100 370200 410100 420100 430100 440100
440300 440400 440600 441900 450100 460100 500100 510100 520100 530100 540100 610100 620100
630100 640100 650100 110101 110102 110105 110106 110107 110108 120101 120102 120103 120104
310101 310104 310105 310106 310107 310109 310110 310115 320102 320104 320105 320106 330102
330106 330108 420102 420103 420104 420106 440103 440104 440105 440106 440111 440303 440304
440305 440306 500103 510104 510105 510107 610103
"""
DIVISIONS: tuple[str, ...] = tuple(_DIVISION_CODES.split())
# Province code -> short province name (as organisation names carry it).
REGION_OF: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古", "21": "辽宁",
    "22": "吉林", "23": "黑龙江", "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽",
    "35": "福建", "36": "江西", "37": "山东", "41": "河南", "42": "湖北", "43": "湖南",
    "44": "广东", "45": "广西", "46": "海南", "50": "重庆", "51": "四川", "52": "贵州",
    "53": "云南", "54": "西藏", "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏",
    "65": "新疆", "71": "台湾", "81": "香港", "82": "澳门",
}  # fmt: skip

TRADE_CHARS = (
    "华信宏达金鑫恒通瑞丰天成源博远新中联盛泰安康汇聚鼎佳利兴昌隆嘉和创美宇航腾飞万科凯"
    "东方海洋明星光大正德永同力伟业广汇晨阳润青山绿水长江南北京福禄寿喜祥云龙凤"
)
INDUSTRIES = (
    "科技", "贸易", "建筑工程", "餐饮管理", "物流", "电子", "食品", "服装", "文化传媒",
    "信息技术", "机械设备", "医药", "房地产开发", "环保科技", "农业发展", "教育咨询",
)  # fmt: skip
LEGAL_FORMS = ("有限公司", "有限责任公司", "股份有限公司", "有限公司", "有限公司")
FORM_VARIANTS = {"有限公司": "有限责任公司", "有限责任公司": "有限公司", "股份有限公司": "股份公司"}
