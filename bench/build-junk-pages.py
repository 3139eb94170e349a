#!/usr/bin/env python3
"""Writes the junk fixture (tests/Cleaner.Tests/Junk): pages no corpus should keep, in English and Japanese, five
seeded variants of each kind: keyword lists, boilerplate-only pages, lorem ipsum, repeated lines, navigation farms
machine-generated listings, local-SEO doorway pages (one service in one town, the same sentence templates reshuffled),
comment spam, tag clouds and blog archives of titles and dates; and, in Japanese only, SEO pages of katakana product words strung together with a few
particles. Usage: bench/build-junk-pages.py OUT"""
import html, os, random, shutil, sys

out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
rng = random.Random(20261201)

EN_WORDS = "cheap flights hotels deals best price online buy discount free shipping sale coupon insurance loans credit casino bonus review top rated 2026 near me".split()
JA_WORDS = "格安 航空券 ホテル 最安値 通販 送料無料 激安 セール クーポン 保険 ローン 比較 ランキング 口コミ 人気 おすすめ 即日 無料 キャンペーン 限定".split()
LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. "
         "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "
         "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. ")
JA_DUMMY = "これはダミーテキストです。文字の大きさ、量、字間、行間等を確認するために入れています。この文章はダミーです。"

def page(lang, title, body):
    return (f"<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body>{body}</body></html>")

def para(text):
    return f"<p>{html.escape(text)}</p>"

def keyword_list(lang, i):
    words = EN_WORDS if lang == "en" else JA_WORDS
    sep = ", " if lang == "en" else "、"
    lines = [sep.join(rng.sample(words, 12)) + ("." if lang == "en" else "。") for _ in range(30)]
    return page(lang, sep.join(rng.sample(words, 4)), "".join(para(l) for l in lines))

def boilerplate(lang, i):
    if lang == "en":
        lines = ["Home", "About us", "Contact", "Log in", "Sign up", "This website uses cookies to improve your experience.",
                 "By continuing to browse you accept our privacy policy and terms of use.", "Copyright 2026 Example Corp. All rights reserved.",
                 "Follow us on social media.", "Subscribe to our newsletter.", "Back to top"]
    else:
        lines = ["ホーム", "会社概要", "お問い合わせ", "ログイン", "新規登録", "当サイトではクッキーを使用しています。",
                 "閲覧を続けることでプライバシーポリシーと利用規約に同意したものとみなします。", "Copyright 2026 Example株式会社 All rights reserved.",
                 "SNSでフォローしてください。", "メールマガジンを購読する。", "ページトップへ"]
    rng.shuffle(lines)
    return page(lang, "Welcome" if lang == "en" else "ようこそ", "".join(para(l) for l in lines * 2))

def lorem(lang, i):
    text = LOREM if lang == "en" else JA_DUMMY
    return page(lang, "Lorem ipsum" if lang == "en" else "ダミー", "".join(para(text * rng.randint(1, 3)) for _ in range(15)))

def repeated(lang, i):
    line = (f"Click here to get the best deal on {rng.choice(EN_WORDS)} today, limited offer for all customers." if lang == "en"
            else f"今すぐクリックして{rng.choice(JA_WORDS)}のお得な情報をチェックしてください、期間限定のキャンペーン実施中です。")
    return page(lang, "Offer", "".join(para(line) for _ in range(40)))

def navigation_farm(lang, i):
    words = EN_WORDS if lang == "en" else JA_WORDS
    links = "".join(f"<li><a href=\"/p/{n}\">{html.escape(' '.join(rng.sample(words, 3)))}</a></li>" for n in range(120))
    intro = "Browse all categories below." if lang == "en" else "以下のカテゴリーからお選びください。"
    return page(lang, "Sitemap" if lang == "en" else "サイトマップ", para(intro) + f"<ul>{links}</ul>")

def listing(lang, i):
    rows = []
    for n in range(60):
        price = rng.randint(100, 99999)
        if lang == "en":
            rows.append(f"<tr><td>Item {rng.randint(10000, 99999)}</td><td>{rng.choice(EN_WORDS)} {rng.choice(EN_WORDS)}</td><td>${price / 100:.2f}</td><td>In stock.</td></tr>")
        else:
            rows.append(f"<tr><td>商品番号 {rng.randint(10000, 99999)}</td><td>{rng.choice(JA_WORDS)}{rng.choice(JA_WORDS)}</td><td>{price}円</td><td>在庫あり。</td></tr>")
    return page(lang, "Products" if lang == "en" else "商品一覧", f"<table>{''.join(rows)}</table>")

KATAKANA_WORDS = ("スマートウォッチ ワイヤレスイヤホン プレミアム アウトレット セール キャンペーン ポイント クーポン ランキング レビュー "
                  "サプリメント ダイエット コスメ ファッション ブランド アイテム オンラインショップ スペシャル プライス ボーナス "
                  "ギフト プレゼント メンズ レディース トレンド コーデ バッグ スニーカー アクセサリー コスパ").split()
GLUE = ["の", "と", "で", "が", "なら", "も"]

def katakana_seo(lang, i):
    sentences = []
    for _ in range(24):
        words = rng.sample(KATAKANA_WORDS, 5)
        sentences.append("".join(w + rng.choice(GLUE) for w in words[:-1]) + words[-1] + rng.choice(["！", "。", "♪"]))
    return page(lang, "".join(rng.sample(KATAKANA_WORDS, 3)), "".join(para(" ".join(sentences[n:n + 3])) for n in range(0, 24, 3)))

CITIES = "Springfield Riverside Fairview Georgetown Salem Madison Franklin Clinton Arlington Ashland Oxford Milton Dayton Dover Jackson".split()
SERVICES = ["plumber", "electrician", "roofer", "locksmith", "dentist", "lawyer", "mover", "house cleaner", "car repair shop", "pest control"]
JA_CITIES = "札幌 仙台 新宿 渋谷 横浜 川崎 名古屋 京都 大阪 神戸 広島 福岡 熊本 那覇 金沢".split()
JA_SERVICES = ["水道修理", "電気工事", "鍵の交換", "歯医者", "弁護士", "引越し", "ハウスクリーニング", "車検", "害虫駆除", "外壁塗装"]
EN_TEMPLATES = [
    "Looking for the best {s} in {c}? Our {c} {s} team is available 24 hours a day, 7 days a week.",
    "We are the most trusted {s} in {c} and the surrounding area, with hundreds of five-star reviews.",
    "Call now for a free quote from a licensed {s} in {c}; we offer the lowest prices in {c}.",
    "Every {s} in our {c} office is fully insured, and we guarantee your satisfaction.",
    "Need an emergency {s} near {c}? Our {s} can be at your door in under an hour.",
    "Customers in {c} choose us because we are the fastest and most affordable {s} in town.",
]
JA_TEMPLATES = [
    "{c}で{s}をお探しなら、{c}の{s}専門店にお任せください。24時間365日対応しています。",
    "{c}エリアで一番信頼されている{s}業者として、多くのお客様から高い評価をいただいています。",
    "今すぐお電話で{c}の{s}の無料見積もりをご依頼ください。{c}最安値に挑戦しています。",
    "{c}の{s}スタッフは全員が有資格者で、安心してご依頼いただけます。",
    "{c}周辺で急ぎの{s}が必要な方は、最短30分で駆けつけます。",
    "{c}のお客様に選ばれる理由は、早くて安い{s}だからです。",
]

def doorway(lang, i):
    # Local-SEO doorway pages: the same sentence templates for one service in one town, reshuffled.
    c, s = (rng.choice(CITIES), rng.choice(SERVICES)) if lang == "en" else (rng.choice(JA_CITIES), rng.choice(JA_SERVICES))
    templates = EN_TEMPLATES if lang == "en" else JA_TEMPLATES
    sentences = [rng.choice(templates).format(c=c, s=s) for _ in range(36)]
    return page(lang, f"{s} {c}", "".join(para(" ".join(sentences[n:n + 3])) for n in range(0, 36, 3)))

def comment_spam(lang, i):
    # A blog post's comment section taken over by spam: short praise and a link, many times over.
    if lang == "en":
        openers = ["Great post!", "Thanks for sharing.", "Very informative article.", "Nice blog!", "I really enjoyed reading this.", "Awesome content."]
        pitches = ["Check out my site for {w} {x}.", "Visit us for the best {w} {x} deals.", "Get {w} {x} at the lowest price here.", "Click here for free {w} {x}."]
        words = EN_WORDS
    else:
        openers = ["素晴らしい記事ですね！", "参考になりました。", "とても役に立つ情報です。", "いつも楽しく読んでいます。", "ありがとうございます！"]
        pitches = ["{w}{x}なら当サイトへ。", "{w}{x}の最安値はこちら。", "無料で{w}{x}をゲットしよう。", "{w}{x}の情報はこちらから。"]
        words = JA_WORDS
    items = []
    for n in range(40):
        user = f"user{rng.randint(100, 9999)}"
        text = rng.choice(openers) + " " + rng.choice(pitches).format(w=rng.choice(words), x=rng.choice(words))
        items.append(f"<li><b>{user}</b> <a href=\"http://spam{n}.example/\">http://spam{n}.example/</a><p>{html.escape(text)}</p></li>")
    return page(lang, "Comments" if lang == "en" else "コメント", f"<ol>{''.join(items)}</ol>")

def tag_cloud(lang, i):
    words = EN_WORDS + "news sports weather music movies games tech travel food health".split() if lang == "en" else JA_WORDS + "ニュース スポーツ 天気 音楽 映画 ゲーム 旅行 グルメ 健康".split()
    tags = "".join(f"<a href=\"/tag/{n}\">{html.escape(rng.choice(words))}</a> " for n in range(300))
    return page(lang, "Tags" if lang == "en" else "タグ", f"<div class=\"tags\">{tags}</div>")

def archive(lang, i):
    # A blog archive: post titles, dates, authors and "read more", nothing else.
    rows = []
    for n in range(50):
        words = " ".join(rng.sample(EN_WORDS if lang == "en" else JA_WORDS, 4))
        if lang == "en":
            rows.append(f"<article><h2>{html.escape(words.title())}</h2><p>Posted on March {rng.randint(1, 28)}, 2026 by admin | {rng.randint(0, 40)} comments</p><p><a href=\"/p/{n}\">Read more »</a></p></article>")
        else:
            rows.append(f"<article><h2>{html.escape(words)}</h2><p>2026年3月{rng.randint(1, 28)}日 投稿者: admin | コメント{rng.randint(0, 40)}件</p><p><a href=\"/p/{n}\">続きを読む »</a></p></article>")
    return page(lang, "Archive" if lang == "en" else "アーカイブ", "".join(rows))

# New kinds go last, so the pages of the kinds before them stay as they were.
kinds = {"keywords": keyword_list, "boilerplate": boilerplate, "lorem": lorem, "repeated": repeated, "navigation": navigation_farm, "listing": listing,
         "katakana": katakana_seo, "doorway": doorway, "comments": comment_spam, "tags": tag_cloud, "archive": archive}
languages = {"katakana": ("ja",)}
for kind, make in kinds.items():
    for lang in languages.get(kind, ("en", "ja")):
        for i in range(5):
            with open(os.path.join(out, f"{kind}-{lang}-{i}.html"), "w", encoding="utf-8") as f:
                f.write(make(lang, i))
print(f"{out}: {len(os.listdir(out))} junk pages")
