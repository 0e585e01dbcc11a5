"""The demo data simulator: a deterministic population of micro-influencers whose posts behave the way the
influencer-marketing literature says real posts do, with the ground truth kept beside them.

`load_demo(path, **options)` is what `load_posts("demo", ...)` calls: it generates the population on
first use (or when the directory's `manifest.json` does not match the options) and returns the canonical
posts table. `generate_demo(out_dir, **options)` always generates. Every choice comes from numpy
Generators seeded from `seed` per account and per stage (never a global RNG, never the clock), so the
same options give the same table and the same JPEG bytes.

How a population is made (docs/demo-data.md has every number and where it comes from):

    accounts      followers, niche, visual style, posting habits           (one RNG stream per account)
    campaigns     brand assets posted by 2-5 accounts on the same day      (one stream)
    post plans    time, photo crop, colour look, caption, sponsorship      (one stream per account)
    outcomes      felt_fake, likes, comments from the latent quantities    (one stream per account)
    rendering     photo plans -> JPEG files (pure functions of the plans; no randomness)

The directory is written atomically: everything goes into a temporary sibling directory that is renamed
into place at the end, with `manifest.json` written last, so a killed generation never leaves a
population that a later call would trust.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pydantic import ValidationError
from tqdm.auto import tqdm

from engage.config import DemoSettings
from engage.data.schema import CANONICAL, LoadReport, attach_report, validate_posts
from engage.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Bumped whenever the simulator's output changes for the same options: older directories regenerate.
SIMULATOR_VERSION = 1
#: The simulated period ends here (a fixed date, not "now", so that generation is deterministic).
PERIOD_END = pd.Timestamp("2025-03-01T00:00:00Z")
DEFAULT_OUT_DIR = "data/demo"
MANIFEST = "manifest.json"
_POPULATION_FILES = {MANIFEST, "posts.parquet", "truth.parquet", "images"}
OPTION_NAMES = ("seed", "n_accounts", "posts_per_account", "months", "image_size")

# ----------------------------------------------------------------------------------------------------
# Photos: openly licensed sample images that ship inside scikit-image (read from its data folder; the
# fetchers that could download are never called). Licences are listed in docs/demo-data.md.

PHOTO_FILES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "cell": "cell.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "color": "color.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "horse": "horse.png",
    "hubble": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "moon": "moon.png",
    "motorcycle_left": "motorcycle_left.png",
    "motorcycle_right": "motorcycle_right.png",
    "page": "page.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}


def photo_dir() -> Path:
    """scikit-image's bundled sample-image folder (part of the installed package)."""
    import skimage.data

    return Path(skimage.data.__file__).resolve().parent


#: Where the subject of each photo is: crop centres are drawn inside this box (fractions of width, height),
#: so that crops show the subject rather than empty sky or background. Photos not listed: anywhere.
SUBJECTS: dict[str, tuple[float, float, float, float]] = {
    "rocket": (0.38, 0.3, 0.62, 0.8), "retina": (0.25, 0.25, 0.75, 0.75), "coffee": (0.3, 0.3, 0.7, 0.7),
    "color": (0.3, 0.3, 0.7, 0.7), "chelsea": (0.3, 0.2, 0.75, 0.8), "horse": (0.2, 0.3, 0.8, 0.7),
    "camera": (0.25, 0.2, 0.7, 0.8), "motorcycle_left": (0.25, 0.4, 0.75, 0.75),
    "motorcycle_right": (0.25, 0.4, 0.75, 0.75), "moon": (0.2, 0.2, 0.8, 0.9), "cell": (0.5, 0.5, 0.85, 0.8),
}


@cache
def _base_photo(name: str) -> Image.Image:
    path = photo_dir() / PHOTO_FILES[name]
    if not path.is_file():
        raise DataError(
            f"the demo photo {name!r} is not in the installed scikit-image package; reinstall scikit-image (>=0.22)",
            file=path,
        )
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")


# ----------------------------------------------------------------------------------------------------
# Niches: photo pool (name -> weight) and caption material. {thing} and {n} are filled per post.


@dataclass(frozen=True)
class Niche:
    name: str
    photos: dict[str, float]
    handle_words: tuple[str, ...]
    things: tuple[str, ...]
    openers: tuple[str, ...]
    details: tuple[str, ...]
    questions: tuple[str, ...]
    hashtags: tuple[str, ...]
    brands: tuple[tuple[str, str], ...]  # (brand name, handle)
    emoji: tuple[str, ...]


NICHES: dict[str, Niche] = {n.name: n for n in [
    Niche(
        "fashion", {"astronaut": 3, "brick": 2, "motorcycle_right": 1, "camera": 1}, ("wears", "style", "closet", "fits"),
        ("linen blazer", "wide-leg trousers", "vintage denim jacket", "silk scarf", "leather loafers", "oversized knit",
         "pleated skirt", "trench coat", "white sneakers", "wool coat"),
        ("Today's fit: the {thing}.", "Styling the {thing} three ways.", "Outfit of the day with my {thing}.",
         "Weekend layers, starring the {thing}.", "Thrifted this {thing} and I'm obsessed.", "Back to basics with a {thing}.",
         "Street style moment in the {thing}.", "Closet staple alert: {thing}."),
        ("The {thing} is mostly organic cotton, cut slightly boxy so it sits well over a fitted tee.",
         "I paired it with straight-leg jeans rolled twice at the ankle and a {n} mm leather belt.",
         "Sizing tip: I went one size down because the {thing} runs about {n} mm long in the sleeves.",
         "The palette is camel, cream and charcoal, so every piece mixes with the rest of my capsule wardrobe.",
         "I bought the {thing} second-hand for {n} euros and had the hem taken up by a local tailor.",
         "The fabric is a mid-weight twill, warm enough for autumn mornings without feeling bulky."),
        ("Which way would you wear it?", "Team sneakers or loafers?", "What's the one piece you re-wear the most?"),
        ("ootd", "fashion", "style", "outfitinspo", "streetstyle", "capsulewardrobe", "thrifted", "slowfashion",
         "lookbook", "whatiwore", "fashionblogger", "styleinspo"),
        (("Atelier Nord", "ateliernord"), ("Loomwell", "loomwell"), ("Vanta Denim", "vantadenim")),
        ("👗", "👟", "🧥", "🖤", "👜"),
    ),
    Niche(
        "beauty", {"astronaut": 3, "retina": 2, "color": 1, "ihc": 1}, ("glow", "beauty", "skin", "makeup"),
        ("vitamin C serum", "tinted moisturiser", "cream blush", "lip oil", "clay mask", "SPF 50 fluid", "brow gel",
         "night cream", "cleansing balm", "liquid highlighter"),
        ("Morning routine featuring the {thing}.", "Glow check with my {thing}.", "Five-minute face, starring the {thing}.",
         "Trying the {thing} for the first time.", "Skin is loving this {thing}.", "Soft glam using the {thing}.",
         "My holy-grail {thing}.", "Pared-back beauty: {thing} and nothing else."),
        ("I apply {n} drops of the {thing} on damp skin and wait a minute before moisturiser.",
         "It has niacinamide and panthenol and sits well under makeup, with no pilling after {n} hours.",
         "Shade match: I am light-medium with warm undertones, and the second-lightest shade worked best.",
         "I have combination skin, so I use the {thing} only on the T-zone a few times a week.",
         "After {n} weeks my dark spots are visibly lighter; photos are unedited, daylight by the window.",
         "Tap the {thing} in with fingers rather than a sponge; it blends faster and wastes less product."),
        ("What's in your morning routine?", "Do you patch test new products?", "Dewy or matte?"),
        ("skincare", "beauty", "makeup", "glowingskin", "skincareroutine", "cleanbeauty", "beautytips", "selfcare",
         "makeuplook", "skintok", "dewyskin", "beautyblogger"),
        (("Lumora Skin", "lumoraskin"), ("Petal & Pore", "petalandpore"), ("Glowcraft", "glowcraft")),
        ("💄", "🌸", "🧴", "💧", "💋"),
    ),
    Niche(
        "food", {"coffee": 4, "brick": 1, "grass": 1}, ("eats", "cooks", "bakes", "kitchen"),
        ("flat white", "sourdough loaf", "shakshuka", "banana bread", "cold brew", "ramen bowl", "lemon tart",
         "overnight oats", "pesto pasta", "cinnamon buns"),
        ("Sunday brunch: {thing}.", "Made a {thing} this morning.", "Comfort food season means {thing}.",
         "The {thing} that fixed my week.", "Recipe test number {n}: {thing}.", "Slow morning, good {thing}.",
         "Finally nailed the {thing}.", "Café find of the week: the {thing}."),
        ("The {thing} takes {n} minutes start to finish, most of it hands-off.",
         "I use a 1:15 coffee-to-water ratio with water just off the boil, around 94 degrees.",
         "The dough proves for {n} hours in the fridge, which gives it that tangy, open crumb.",
         "Brown the butter until it smells nutty, then fold in the sugar while it is still warm.",
         "Season in layers: a pinch of salt at every step beats a spoonful at the end.",
         "Swap the cream for thick yoghurt if you want the {thing} lighter; it still sets in {n} minutes."),
        ("What's your go-to order?", "Sweet or savoury breakfast?", "Should I post the full recipe?"),
        ("foodie", "homecooking", "brunch", "coffee", "baking", "recipe", "foodphotography", "coffeetime",
         "sourdough", "eeeeeats", "foodblogger", "cafe"),
        (("Brewhaus Coffee", "brewhauscoffee"), ("Crumb & Co", "crumbandco"), ("Oatly Fields", "oatlyfields")),
        ("☕", "🥐", "🍋", "🍜", "🍰"),
    ),
    Niche(
        "travel", {"rocket": 2, "motorcycle_left": 2, "moon": 1, "grass": 1, "gravel": 1, "hubble": 1},
        ("travels", "wanders", "roams", "abroad"),
        ("coastal road", "old harbour", "mountain pass", "night market", "train ride", "desert camp", "island ferry",
         "hidden beach", "hill town", "city rooftop"),
        ("Postcard from the {thing}.", "Day {n} on the road: the {thing}.", "Woke up to this {thing}.",
         "Chasing sunsets along the {thing}.", "Still dreaming about that {thing}.", "Detour of the week: the {thing}.",
         "The {thing}, before the crowds.", "Slow travel days at the {thing}."),
        ("We took the regional train for {n} euros and walked the last hour along the {thing}.",
         "Best light is around 7 pm; we stayed in a guesthouse {n} minutes from the {thing}.",
         "Budget for the whole week was {n} hundred euros, including food and the ferry.",
         "Go early: by ten the {thing} fills up and the parking is gone.",
         "Pack layers; it was warm at noon and close to freezing once the sun dropped.",
         "The route is about {n} km, mostly flat, with one steep climb at the end."),
        ("Have you been here?", "Mountains or sea?", "Where should I go next?"),
        ("travel", "wanderlust", "travelgram", "roadtrip", "slowtravel", "explore", "adventure", "travelphotography",
         "backpacking", "weekendaway", "travelblogger", "getaway"),
        (("Nomad Trails", "nomadtrails"), ("Skyhop Air", "skyhopair"), ("Driftpack", "driftpack")),
        ("✈️", "🗺️", "🌅", "🏔️", "🌊"),
    ),
    Niche(
        "fitness", {"grass": 2, "gravel": 2, "motorcycle_left": 1, "astronaut": 1, "brick": 1},
        ("lifts", "runs", "moves", "fit"),
        ("trail run", "leg day", "hill sprints", "mobility flow", "5k tempo run", "kettlebell circuit", "rest day walk",
         "deadlift session", "swim set", "yoga flow"),
        ("Today's session: {thing}.", "Week {n} of training, {thing} done.", "Early {thing} before work.",
         "Sweaty but happy after the {thing}.", "New personal best on the {thing}.", "Keeping it simple: {thing}.",
         "The {thing} that humbled me.", "Consistency over intensity: {thing}."),
        ("The {thing} was {n} rounds of 40 seconds on, 20 seconds off, with a two-minute rest between blocks.",
         "I keep my easy runs at a pace where I can still talk, around {n} beats per minute below threshold.",
         "Warm-up is ten minutes of hip openers and band work; it fixed my knee pain in a month.",
         "I eat about {n} grams of protein a day, mostly eggs, lentils and Greek yoghurt.",
         "Deload every fourth week: same movements, roughly half the volume.",
         "The {thing} route climbs {n} metres in the first two kilometres, so start slow."),
        ("What's your favourite workout?", "Morning or evening training?", "Want the full plan?"),
        ("fitness", "workout", "running", "trailrunning", "strengthtraining", "fitfam", "gym", "mobility",
         "homeworkout", "runnersofinstagram", "fitnessmotivation", "training"),
        (("Stride Lab", "stridelab"), ("Ironleaf Nutrition", "ironleafnutrition"), ("Peakform", "peakform")),
        ("💪", "🏃", "🔥", "🏋️", "🧘"),
    ),
    Niche(
        "music", {"camera": 3, "color": 2, "brick": 1, "moon": 1}, ("sounds", "beats", "plays", "tunes"),
        ("new demo", "vinyl find", "live set", "acoustic cover", "synth patch", "rehearsal", "album review",
         "studio session", "jam night", "playlist"),
        ("Late night {thing}.", "Sharing a {thing} today.", "This {thing} has been on repeat.",
         "Behind the scenes of the {thing}.", "Rainy day, {thing}.", "Finally finished the {thing}.",
         "Throwback to the {thing}.", "Sunday {thing} vibes."),
        ("Recorded in one take on a {n}-year-old upright piano with a single ribbon mic.",
         "The synth line is two detuned saw waves through a low-pass filter opening over {n} bars.",
         "Found this pressing for {n} euros at a flea market; the sleeve is worn but the vinyl is clean.",
         "The song sits at 92 bpm in D minor, with the chorus lifting to F major.",
         "We rehearse twice a week for {n} hours, always starting with the hardest song.",
         "The drums were tracked in the living room with blankets on every wall."),
        ("What are you listening to?", "Vinyl or streaming?", "Should we play this live?"),
        ("music", "musician", "newmusic", "vinyl", "livemusic", "studio", "songwriter", "producer", "synth",
         "indiemusic", "recordcollection", "nowplaying"),
        (("Resonant Audio", "resonantaudio"), ("Groovebox", "groovebox"), ("Hollow Strings", "hollowstrings")),
        ("🎧", "🎸", "🎹", "🎶", "🎤"),
    ),
    Niche(
        "pets", {"chelsea": 4, "horse": 2, "grass": 1}, ("paws", "pets", "furry", "whiskers"),
        ("nap spot", "morning zoomies", "new toy", "vet visit", "grooming day", "favourite blanket", "treat time",
         "window watch", "garden patrol", "birthday"),
        ("Caught in the middle of {thing}.", "{thing} is serious business.", "Reporting live from the {thing}.",
         "Someone is very proud of the {thing}.", "The daily {thing}.", "Guess who skipped the {thing}.",
         "Happy {thing} to this one.", "Tiny boss, big {thing}."),
        ("She is {n} years old, a rescue, and still acts like a kitten around string.",
         "We switched to a grain-free food {n} weeks ago and her coat has never been shinier.",
         "The vet says {n} minutes of play twice a day keeps indoor cats at a healthy weight.",
         "Her favourite toy is a crinkly paper ball; the expensive ones get ignored.",
         "Nails trimmed every two weeks with treats after every paw, no drama.",
         "She sleeps about {n} hours a day, mostly in the one sunny spot by the window."),
        ("Does your pet have a favourite spot?", "Cats or dogs?", "What's your pet's name?"),
        ("catsofinstagram", "pets", "catlife", "petlovers", "adoptdontshop", "meow", "instacat", "rescuecat",
         "petsofinstagram", "horses", "animallovers", "catstagram"),
        (("Whisker Kitchen", "whiskerkitchen"), ("Pawsome Toys", "pawsometoys"), ("Furline", "furline")),
        ("🐱", "🐾", "🐴", "😺", "🧶"),
    ),
    Niche(
        "books", {"page": 3, "text": 2, "coffee": 1, "brick": 1}, ("reads", "books", "pages", "shelf"),
        ("new release", "classic novel", "poetry collection", "reading nook", "library haul", "book club pick",
         "memoir", "annotated copy", "short story", "sci-fi series"),
        ("Currently reading: a {thing}.", "This month's {thing}.", "Quiet evening with a {thing}.",
         "Finished the {thing} in one sitting.", "My {thing} stack is getting out of hand.",
         "Rereading a {thing}.", "Cosy corner, {thing}.", "Page {n} of the {thing}."),
        ("It's {n} pages, told in alternating chapters by two sisters thirty years apart.",
         "The translation keeps the short sentences of the original, which makes the ending hit harder.",
         "I read it with a pencil and ended up with {n} underlined passages in the first half.",
         "Best for a rainy weekend; the middle third drags but the last hundred pages fly.",
         "Our book club meets monthly and we pick by vote from a shortlist of {n} titles.",
         "If you liked quiet literary fiction with unreliable narrators, start with this one."),
        ("What are you reading right now?", "Paper or e-reader?", "Any recommendations for next month?"),
        ("bookstagram", "books", "reading", "booklover", "bookworm", "currentlyreading", "bookclub", "amreading",
         "literaryfiction", "bookish", "booksofinstagram", "tbr"),
        (("Inkwell Press", "inkwellpress"), ("Pagewise", "pagewise"), ("Northlight Books", "northlightbooks")),
        ("📚", "📖", "☕", "🕯️", "✒️"),
    ),
    Niche(
        "space", {"hubble": 3, "moon": 2, "rocket": 2, "astronaut": 1}, ("stars", "cosmos", "orbit", "skies"),
        ("deep field", "lunar terminator", "launch", "Orion nebula", "meteor shower", "Jupiter's moons", "star trail",
         "new moon night", "ISS pass", "galaxy cluster"),
        ("Tonight's sky: the {thing}.", "Looking up at the {thing}.", "Space fact of the day: the {thing}.",
         "Clear skies for the {thing}.", "Still in awe of the {thing}.", "Launch day feelings: the {thing}.",
         "Weekend under the {thing}.", "Zooming in on the {thing}."),
        ("Shot through an {n}-inch Dobsonian with a phone adapter, {n} frames stacked.",
         "Every smudge in this frame is a galaxy, some of them more than ten billion light years away.",
         "The terminator line is where craters cast the longest shadows, so detail pops there.",
         "Best viewing is after midnight, away from city lights, with {n} minutes for your eyes to adapt.",
         "The booster landed about {n} minutes after lift-off, on a drone ship offshore.",
         "Exposure was {n} seconds at ISO 1600 on a tripod, no tracking mount."),
        ("Have you ever seen it yourself?", "What should I photograph next?", "Moon or Milky Way?"),
        ("space", "astronomy", "astrophotography", "nasa", "moon", "stargazing", "universe", "galaxy", "nightsky",
         "cosmos", "rocketlaunch", "telescope"),
        (("Orbitlens", "orbitlens"), ("Stellarworks", "stellarworks"), ("Nightsky Optics", "nightskyoptics")),
        ("🚀", "🌙", "🌌", "⭐", "🔭"),
    ),
    Niche(
        "science", {"retina": 3, "ihc": 3, "hubble": 1, "moon": 1}, ("lab", "science", "cells", "nerd"),
        ("microscope slide", "stain protocol", "fundus image", "cell culture", "lab notebook", "imaging session",
         "poster draft", "journal club paper", "pipette setup", "dataset"),
        ("From the lab today: a {thing}.", "Science is beautiful: the {thing}.", "Late {thing} in the lab.",
         "What a {thing} looks like up close.", "Week {n} of the project: {thing}.", "Explaining my {thing}.",
         "Proud of this {thing}.", "Behind the {thing}."),
        ("The brown stain marks the protein we study; the blue is a counterstain for every nucleus.",
         "Imaged at {n}x magnification, each cell here is roughly a tenth of a millimetre across.",
         "The fundus image shows the optic disc on the left and vessels fanning out toward the macula.",
         "We ran {n} replicates and the effect held in every one, which never happens.",
         "The protocol takes {n} hours, most of it waiting for antibodies to bind.",
         "Phase imaging lets us see cells without staining, using how much light slows down through them."),
        ("Any questions about lab life?", "Did you like science at school?", "Want a thread on how this works?"),
        ("science", "scicomm", "microscopy", "biology", "research", "labLife", "womeninstem", "phdlife", "stem",
         "neuroscience", "histology", "sciart"),
        (("Lumen Labware", "lumenlabware"), ("Helix Optics", "helixoptics"), ("Pipettia", "pipettia")),
        ("🔬", "🧪", "🧬", "🧫", "📊"),
    ),
    Niche(
        "tech", {"motorcycle_left": 2, "motorcycle_right": 2, "rocket": 1, "camera": 1}, ("tech", "builds", "gadgets", "hacks"),
        ("mechanical keyboard", "e-bike motor", "camera rig", "home server", "3D print", "desk setup", "drone",
         "retro console", "smart lamp", "soldering project"),
        ("Weekend build: the {thing}.", "First look at my {thing}.", "Upgraded the {thing}.",
         "The {thing} is finally working.", "Teardown time: {thing}.", "Day {n} with the {thing}.",
         "Messy bench, happy {thing}.", "Long-term review: the {thing}."),
        ("It runs on a {n}-core ARM board that draws under ten watts at idle.",
         "The switches are lubed linears with {n} g actuation, and the case is gasket-mounted.",
         "Battery life came in at {n} hours of mixed use, about a third better than advertised.",
         "Firmware is open source, so I flashed it and removed the cloud account requirement.",
         "Total cost was around {n}0 euros, mostly second-hand parts from local listings.",
         "I printed the bracket in PETG at 0.2 mm layers; it took {n} hours."),
        ("Would you build one?", "What's on your desk right now?", "Should I do a full tutorial?"),
        ("tech", "gadgets", "diy", "maker", "desksetup", "mechanicalkeyboard", "3dprinting", "homelab", "electronics",
         "techreview", "ebike", "setup"),
        (("Voltrix", "voltrix"), ("Keyforge", "keyforge"), ("Nimbus Devices", "nimbusdevices")),
        ("⚙️", "💻", "🔧", "🔋", "🛠️"),
    ),
    Niche(
        "finance", {"coins": 4, "page": 1, "text": 1, "brick": 1}, ("money", "saves", "invests", "budget"),
        ("budget sheet", "index fund", "coin collection", "savings jar", "no-spend month", "emergency fund",
         "side hustle", "tax folder", "pension check", "price tracker"),
        ("Money Monday: the {thing}.", "Month {n} of my {thing}.", "Let's talk about the {thing}.",
         "Small wins: the {thing}.", "The boring {thing} that changed everything.", "Sunday reset with the {thing}.",
         "My honest {thing} update.", "Starting a {thing} from zero."),
        ("I put {n}% of every payslip into a broad index fund the day it lands, before I can spend it.",
         "The emergency fund covers {n} months of rent and bills and sits in an instant-access account.",
         "Fees matter: a 1% yearly fee can eat close to a quarter of your returns over thirty years.",
         "I track every purchase in one spreadsheet with {n} categories, reviewed every Sunday.",
         "These coins are from my grandfather's collection, the oldest dated {n}0 years back.",
         "No-spend rules: groceries and bills only, and a 48-hour wait on anything else."),
        ("How do you budget?", "Saving or investing first?", "What's your money goal this year?"),
        ("personalfinance", "budgeting", "investing", "savings", "money", "financialfreedom", "frugal", "indexfunds",
         "debtfree", "moneytips", "coins", "financetips"),
        (("Coinwise", "coinwise"), ("Ledgerly", "ledgerly"), ("Harbor Bank", "harborbank")),
        ("💰", "📈", "🪙", "💸", "🏦"),
    ),
    Niche(
        "art", {"color": 3, "ihc": 2, "horse": 1, "hubble": 1}, ("paints", "draws", "art", "studio"),
        ("colour study", "ink sketch", "gouache palette", "linocut", "abstract piece", "portfolio page",
         "sketchbook spread", "mural wall", "print run", "watercolour"),
        ("Fresh from the studio: a {thing}.", "Work in progress: the {thing}.", "Playing with colour in this {thing}.",
         "Day {n} of the daily {thing} challenge.", "A quiet {thing}.", "Finished the {thing} at last.",
         "Studio mess, happy {thing}.", "Process shot of the {thing}."),
        ("Painted with a limited palette of {n} colours: ultramarine, burnt sienna and a warm yellow.",
         "The paper is 300 gsm cold-pressed, taped down so it stays flat when wet.",
         "This took {n} hours over three evenings, mostly waiting for layers to dry.",
         "I carved the block from soft lino and pulled {n} prints by hand with a wooden spoon.",
         "The colour wheel here is mixed, not printed: each wedge is two pigments and water.",
         "Scanned at 600 dpi; the prints are on archival cotton rag paper."),
        ("Which colour would you add?", "Do you keep a sketchbook?", "Prints or originals?"),
        ("art", "artist", "painting", "watercolor", "illustration", "sketchbook", "artwork", "contemporaryart",
         "printmaking", "colorstudy", "artistsoninstagram", "creativeprocess"),
        (("Pigmenta", "pigmenta"), ("Canvasly", "canvasly"), ("Brushline", "brushline")),
        ("🎨", "🖌️", "✏️", "🖼️", "🌈"),
    ),
]}

FIRST_NAMES = (
    "maya", "leo", "zoe", "theo", "ana", "kai", "ines", "omar", "lena", "finn", "sara", "noah", "mila", "ravi",
    "eva", "jonas", "nora", "luca", "aya", "ben", "ivy", "marco", "elif", "sam", "tara", "hugo", "yuki", "dani",
    "rosa", "felix", "amara", "nils", "lea", "arjun", "ella", "tomas", "priya", "oscar", "jade", "emil", "chloe",
    "max", "selin", "adam", "iris", "jules", "nina", "pablo",
)
INSPIRATIONS = (
    "Small steps every day add up.", "Do more of what makes you feel alive.", "Progress, not perfection.",
    "Make it simple, but make it yours.", "Slow down and notice the good things.", "You are allowed to start again.",
    "Collect moments, not things.", "Be the energy you want to attract.",
    "Create a life you can't wait to wake up to.", "Every day is a fresh start.",
    "Believe you can and you're halfway there.", "Stay curious, stay kind.", "Dream big, start small.",
    "The best view comes after the hardest climb.", "Find joy in the ordinary.", "Trust the process.",
)
RAMBLES = (
    "Honestly this week has been a lot and I have been meaning to post this for ages but life kept happening.",
    "I was going to write something short but you know me, so grab a coffee and settle in.",
    "Quick story: my phone died halfway through the day so half of these shots almost didn't happen.",
    "Not sure why but I keep coming back to this one, maybe it's the mood, maybe it's just the light that day.",
    "Also a little update on everything else: moving flats is chaos, the plants survived, and I still haven't unpacked.",
    "I know I said I would post more regularly and I really am trying, thank you for sticking around.",
    "Random thought while editing this: do you ever look at an old photo and barely remember taking it?",
    "Anyway, that's enough rambling from me for today, back to the to-do list that never ends.",
    "Shout out to everyone who messaged last week, I read every single one even if I'm slow to reply.",
    "It rained the entire morning, then out of nowhere the sun came out and everything changed.",
    "I have so many drafts sitting in my phone that never made it here, this one finally did.",
    "Writing this from the train with terrible signal, so apologies if it posts twice.",
)
GENERIC_QUESTIONS = ("What do you think?", "Which one is your favourite?", "Would you try this?")
CALLS_TO_ACTION = (
    "Save this for later!", "Tag someone who needs to see this.", "Double tap if you agree.",
    "Share this with a friend.", "Drop a comment below!", "Follow for more.",
)
GENERIC_HASHTAGS = (
    "instagood", "photooftheday", "love", "instadaily", "mood", "weekend", "happy", "photography", "picoftheday",
    "lifestyle", "inspiration", "aesthetic", "explore", "dailypost", "goodvibes", "sunday", "morning", "motivation",
    "vibes", "nofilter",
)
GENERIC_EMOJI = ("✨", "❤️", "🙌", "😍", "☀️", "💫")
#: Brand-messaging phrases (any one in a caption is the "brand messaging" cue); {code}/{pct} are filled in.
BRAND_MESSAGES = (
    "Shop now", "Link in bio", "Use code {code} for {pct}% off", "Limited offer", "Available now",
    "Don't miss out", "Get yours today",
)
#: Disclosure labels of sponsored posts and how often each is used (None: not disclosed).
DISCLOSURES: dict[str | None, float] = {None: 0.22, "#ad": 0.30, "#paid": 0.18, "#sponsored": 0.15, "paid partnership": 0.15}
SPONSORED_LINES = (
    "Thanks to @{handle} for sending me the {thing}.", "Teamed up with @{handle} to try their {thing}.",
    "I've been using the {thing} from @{handle} for a few weeks now.", "Partnered with @{handle} on this one.",
)
CAMPAIGN_LINES = (
    "Meet the new {thing} from @{handle}.", "{brand} presents: the {thing}, made for every day.",
    "The {thing} by @{handle} is here.", "Introducing {brand}'s {thing}.",
)
CODE_WORDS = ("SAVE", "GLOW", "HELLO", "WELCOME", "TRY", "JOIN")

# ----------------------------------------------------------------------------------------------------
# Looks: a colour grade plus brightness and contrast. Distances between looks are in "visible steps".


@dataclass(frozen=True)
class Look:
    """The colour look of one rendered photo."""

    grade: str = "natural"
    temperature: float = 0.0  # >0 warmer (red up, blue down), <0 cooler
    saturation: float = 1.0  # 0 monochrome, 1 unchanged, >1 vivid
    fade: float = 0.0  # lifted blacks, lowered whites
    split_tone: float = 0.0  # teal shadows, orange highlights
    brightness: float = 1.0  # multiplier
    contrast: float = 1.0  # multiplier around mid-grey

    def vector(self) -> np.ndarray:
        # One unit on each axis is about one clearly visible step of that adjustment.
        return np.array([
            self.temperature / 1.0, self.saturation / 0.5, self.fade / 0.6, self.split_tone / 0.6,
            math.log(self.brightness) / 0.2, math.log(self.contrast) / 0.2,
        ])


GRADES: dict[str, Look] = {g.grade: g for g in [
    Look("natural"),
    Look("warm", temperature=1.0, saturation=1.1),
    Look("cool", temperature=-1.0, saturation=0.95),
    Look("faded", saturation=0.7, fade=0.9),
    Look("vivid", saturation=1.6),
    Look("mono", saturation=0.0),
    Look("sepia", temperature=1.1, saturation=0.0),
    Look("teal_orange", saturation=1.15, split_tone=1.0),
    Look("pastel", temperature=0.3, saturation=0.65, fade=0.5),
]}
BRAND_LOOK = GRADES["natural"]  # a brand's campaign asset is posted as the brand made it
OFF_STYLE_DISTANCE = 1.0  # a post whose look is this far from its account's look is off-style
ZOOM_HABITS: dict[str, tuple[float, float]] = {"wide": (1.4, 1.8), "medium": (1.8, 2.4), "tight": (2.4, 3.1)}
#: Sample photos without colour: only temperature, tone, fade, brightness and contrast show on them.
GREY_PHOTOS = frozenset({"brick", "camera", "coins", "grass", "gravel", "horse", "moon", "page", "text"})


def look_distance(a: Look, b: Look, *, colour: bool = True) -> float:
    """How far apart two looks are, in visible steps; above `OFF_STYLE_DISTANCE` a feed looks inconsistent.

    On a grey photo (`colour=False`) saturation changes nothing, so that axis is left out.
    """
    difference = a.vector() - b.vector()
    if not colour:
        difference[1] = 0.0
    return float(np.linalg.norm(difference))


# ----------------------------------------------------------------------------------------------------
# Effect sizes. Literature shares (fractions of followers) are turned into effects with one factor each;
# docs/demo-data.md lists every number with its source.

LIKES_PER_SHARE = 0.8  # log-likes effect per unit of literature share
FOLLOW_REASONS = {"detail": 0.65, "inspiration": 0.61, "image_quality": 0.60}
TYPICAL = {"detail": 0.4, "inspiration": 0.3}  # population means the effects are centred on
OFF_STYLE_LIKES = -0.25  # an off-style photo in a coherent feed
HASHTAG_FREE = 10  # hashtags beyond this many hurt...
HASHTAG_PENALTY = 0.03  # ...by this much each (log likes)
CAPTION_FREE_CHARS = 600  # characters beyond this many hurt...
CAPTION_PENALTY = 0.3  # ...by this much per 500 characters (log likes)
FELT_FAKE_LIKES = -0.4  # the audience that finds a post inauthentic likes it less
SPONSORED_LIKES = -0.1  # sponsored posts reach fewer people
GIVEAWAY_LIKES = 0.3
EVENING_LIKES = 0.08  # amplitude of the time-of-day cycle, peak at 19:00 UTC
WEEKEND_LIKES = 0.05
LIKES_NOISE_SD = 0.25

FAKE_PER_SHARE = 5.0  # felt_fake logit per unit of literature share
FAKE_CUES = {  # cue -> share of followers for whom it makes a sponsored post feel fake
    "off_style": 0.59, "paid": 0.36, "same_day_duplicate": 0.34, "ad": 0.31, "brand_messaging": 0.31,
    "sponsored_tag": 0.15, "partnership_label": 0.15,  # simulator assumptions (no survey figure)
}
FAKE_BASE_SPONSORED = -3.3
FAKE_BASE_ORGANIC = -4.7

COMMENT_BOOSTS = {"question": 0.45, "call_to_action": 0.35, "giveaway": 1.4}
COMMENT_NOISE_SD = 0.3
CAMPAIGN_POST_SHARE = 0.065  # share of all posts that are campaign posts
OFF_STYLE_RATE = 0.08  # own posts; doubled for own sponsored posts


# ----------------------------------------------------------------------------------------------------
# Plans


@dataclass
class Account:
    index: int
    name: str
    niche: str
    followers_start: float
    followers_end: float
    engagement_rate: float
    comment_rate: float
    look: Look
    zoom_habit: str
    photo_weights: dict[str, float]
    hour_mean: float
    hour_sd: float
    cadence: str
    n_posts: int
    hashtag_habit: float
    overload_rate: float
    emoji_habit: float
    detail_habit: float
    ramble_habit: float
    inspiration_rate: float
    question_rate: float
    cta_rate: float
    giveaway_rate: float
    sponsor_rate: float
    careless_rate: float
    signature: str
    jpeg_quality: int


@dataclass
class Caption:
    text: str
    detail_sentences: int = 0
    inspiration: bool = False
    question: bool = False
    call_to_action: bool = False
    giveaway: bool = False
    disclosure: str = ""
    brand_messages: int = 0
    code: str = ""

    @property
    def n_hashtags(self) -> int:
        return len(re.findall(r"#\w+", self.text))


@dataclass
class PhotoPlan:
    photo: str
    center: tuple[float, float]  # crop centre within the photo's subject box, 0..1 each
    zoom: float  # crop side = shorter photo side / zoom
    flip: bool
    look: Look
    angle: float = 0.0  # degrees, counter-clockwise
    blur: float = 0.0  # Gaussian blur radius in pixels at 320 px
    exposure: float = 1.0  # careless under/over-exposure multiplier
    overlay: str = ""


@dataclass
class Campaign:
    index: int
    brand: str
    handle: str
    niche: str
    day: pd.Timestamp
    photo: PhotoPlan
    caption: Caption
    accounts: list[int]
    hours: list[float]


@dataclass
class PostPlan:
    account: int
    posted_at: pd.Timestamp
    photo: PhotoPlan
    caption: Caption
    sponsored: bool
    off_style: bool
    careless: str = ""
    brand: str = ""
    campaign: int = -1
    campaign_size: int = 0
    post_id: str = ""


def _period_start(months: int) -> pd.Timestamp:
    return PERIOD_END - pd.DateOffset(months=months)


def _make_accounts(seed: int, n_accounts: int, posts_per_account: int) -> list[Account]:
    rng = np.random.default_rng([seed, 0])
    niche_order = list(rng.permutation(list(NICHES)))
    used_names: set[str] = set()
    accounts = []
    own_posts = posts_per_account * (1 - CAMPAIGN_POST_SHARE)
    for index in range(n_accounts):
        a = np.random.default_rng([seed, 1, index])
        niche = NICHES[niche_order[index % len(niche_order)]]
        name = f"{FIRST_NAMES[a.integers(len(FIRST_NAMES))]}.{niche.handle_words[a.integers(len(niche.handle_words))]}"
        base, suffix = name, 2
        while name in used_names:
            name, suffix = f"{base}{suffix}", suffix + 1
        used_names.add(name)
        start = math.exp(a.uniform(math.log(1_000), math.log(80_000)))  # log-uniform
        end = min(start * (1 + a.uniform(0.02, 0.25)), 100_000.0)
        grade = GRADES[str(a.choice(list(GRADES)))]
        look = replace(grade, brightness=math.exp(a.uniform(-0.15, 0.15)), contrast=math.exp(a.uniform(-0.12, 0.18)))
        photos = list(niche.photos)
        weights = np.array([niche.photos[p] for p in photos], dtype=float) * a.dirichlet(np.full(len(photos), 2.0))
        accounts.append(Account(
            index=index,
            name=name,
            niche=niche.name,
            followers_start=start,
            followers_end=end,
            # Smaller accounts engage more: a mild size slope around a lognormal 3%.
            engagement_rate=float(np.clip(0.03 * (start / 10_000) ** -0.15 * math.exp(a.normal(0, 0.35)), 0.005, 0.15)),
            comment_rate=math.exp(a.uniform(math.log(0.01), math.log(0.05))),
            look=look,
            zoom_habit=str(a.choice(list(ZOOM_HABITS))),
            photo_weights=dict(zip(photos, (weights / weights.sum()).tolist(), strict=True)),
            hour_mean=float(a.uniform(7.5, 21.0)),
            hour_sd=float(a.uniform(0.6, 2.0)),
            cadence=str(a.choice(["steady", "irregular", "bursty"])),
            n_posts=max(3, int(round(own_posts * math.exp(a.normal(0, 0.3))))),
            hashtag_habit=float(a.choice([0.5, 1, 2, 3, 4, 5, 6, 8])),
            overload_rate=float(a.uniform(0.0, 0.12)),
            emoji_habit=float(a.uniform(0.0, 3.0)),
            detail_habit=float(a.uniform(0.2, 2.2)),
            ramble_habit=float(a.choice([0.0, 0.3, 1.0, 3.0])),
            inspiration_rate=float(a.uniform(0.05, 0.6)),
            question_rate=float(a.uniform(0.1, 0.5)),
            cta_rate=float(a.uniform(0.05, 0.4)),
            giveaway_rate=float(a.uniform(0.0, 0.06)),
            sponsor_rate=float(a.uniform(0.06, 0.22)),
            careless_rate=float(a.uniform(0.03, 0.12)),
            signature=re.sub(r"\W", "", name),
            jpeg_quality=int(a.integers(84, 95)),
        ))
    return accounts


def _posting_days(rng: np.random.Generator, account: Account) -> np.ndarray:
    """Fractions of the period (0..1) on which the account posts, by its cadence."""
    n = account.n_posts
    if account.cadence == "steady":
        days = (np.arange(n) + 0.5) / n + rng.normal(0, 0.25 / n, n)
    elif account.cadence == "bursty":
        centres = rng.uniform(0, 1, max(2, n // 8))
        days = rng.choice(centres, n) + rng.normal(0, 0.03, n)
    else:
        days = rng.uniform(0, 1, n)
    return np.sort(np.clip(days, 0.0, 0.999))


def _at_hour(day: pd.Timestamp, hour: float) -> pd.Timestamp:
    return day.normalize() + pd.Timedelta(seconds=int(round(hour * 3600)))


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _fill(rng: np.random.Generator, template: str, thing: str) -> str:
    return template.replace("{thing}", thing).replace("{n}", str(int(rng.integers(2, 40))))


def _hashtags(rng: np.random.Generator, account: Account, niche: Niche, count: int) -> list[str]:
    pool = list(dict.fromkeys(niche.hashtags + GENERIC_HASHTAGS))
    tags = []
    if count > 0 and rng.random() < 0.7:
        tags.append(account.signature)
        count -= 1
    count = min(count, len(pool))
    tags += [pool[i] for i in rng.choice(len(pool), count, replace=False)]
    return ["#" + t for t in tags]


def _brand_message(rng: np.random.Generator, brand_handle: str) -> tuple[str, str]:
    """One brand-messaging phrase and the discount code it names (or '')."""
    template = _pick(rng, BRAND_MESSAGES)
    code = ""
    if "{code}" in template:
        pct = int(rng.choice([10, 15, 20, 25, 30]))
        word = _pick(rng, CODE_WORDS) if rng.random() < 0.6 else re.sub(r"[^A-Z]", "", brand_handle.upper())[:6]
        code = f"{word}{pct}"
        template = template.replace("{code}", code).replace("{pct}", str(pct))
    return template + ("!" if rng.random() < 0.5 else "."), code


def _disclosure(rng: np.random.Generator) -> str:
    labels = list(DISCLOSURES)
    label = labels[int(rng.choice(len(labels), p=np.array(list(DISCLOSURES.values()))))]
    return label or ""


def _assemble(parts: list[str], disclosure: str, handle: str, tags: list[str], rng: np.random.Generator) -> str:
    """Caption text from sentences, a disclosure label (at the start or among the hashtags) and hashtags."""
    head = ""
    if disclosure == "paid partnership":
        head = f"Paid partnership with @{handle}. "
    elif disclosure:
        if rng.random() < 0.5:
            head = disclosure + " "
        else:
            tags = [disclosure] + tags
    body = head + " ".join(p for p in parts if p)
    return body + ("\n\n" + " ".join(tags) if tags else "")


def _own_caption(rng: np.random.Generator, account: Account, niche: Niche, accounts: list[Account],
                 brand: tuple[str, str] | None) -> Caption:
    thing = _pick(rng, niche.things)
    parts = [_fill(rng, _pick(rng, niche.openers), thing)]
    parts[0] = parts[0][0].upper() + parts[0][1:]
    n_detail = int(rng.binomial(3, account.detail_habit / 3))
    for i in rng.choice(len(niche.details), n_detail, replace=False):
        parts.append(_fill(rng, niche.details[int(i)], thing))
    for i in rng.choice(len(RAMBLES), min(int(rng.poisson(account.ramble_habit)), 4), replace=False):
        parts.append(RAMBLES[int(i)])
    inspiration = bool(rng.random() < account.inspiration_rate)
    if inspiration:
        parts.append(_pick(rng, INSPIRATIONS))
    caption = Caption(text="", detail_sentences=n_detail, inspiration=inspiration)
    handle = ""
    if brand is not None:
        name, handle = brand
        parts.append(_fill(rng, _pick(rng, SPONSORED_LINES), thing).replace("{handle}", handle))
        caption.disclosure = _disclosure(rng)
        if rng.random() < 0.45:
            message, caption.code = _brand_message(rng, handle)
            parts.append(message)
            caption.brand_messages = 1
    elif rng.random() < 0.04:  # the account's own shop or blog
        parts.append("Link in bio.")
        caption.brand_messages = 1
    caption.giveaway = bool(rng.random() < account.giveaway_rate)
    if caption.giveaway:
        parts.append(f"GIVEAWAY! To win a {thing}: follow @{account.name}, like this post and tag two friends "
                     "in the comments. Winner picked on Sunday.")
    caption.question = bool(rng.random() < account.question_rate)
    if caption.question:
        parts.append(_pick(rng, niche.questions + GENERIC_QUESTIONS))
    caption.call_to_action = bool(rng.random() < account.cta_rate)
    if caption.call_to_action:
        parts.append(_pick(rng, CALLS_TO_ACTION))
    if rng.random() < 0.12 and len(accounts) > 1:
        friend = accounts[int(rng.integers(len(accounts)))]
        if friend.index != account.index:
            parts.append(f"With @{friend.name}.")
    n_emoji = int(rng.poisson(account.emoji_habit))
    if n_emoji:
        pool = niche.emoji + GENERIC_EMOJI
        parts[-1] += " " + "".join(pool[int(i)] for i in rng.integers(len(pool), size=min(n_emoji, 6)))
    if rng.random() < account.overload_rate:
        n_tags = int(rng.integers(18, 31))
    else:
        n_tags = min(int(rng.poisson(account.hashtag_habit)), 10)
    tags = _hashtags(rng, account, niche, max(0, n_tags - (1 if caption.disclosure.startswith("#") else 0)))
    caption.text = _assemble(parts, caption.disclosure, handle, tags, rng)
    return caption


def _campaign_caption(rng: np.random.Generator, niche: Niche, brand: str, handle: str) -> Caption:
    thing = _pick(rng, niche.things)
    parts = [_fill(rng, _pick(rng, CAMPAIGN_LINES), thing).replace("{handle}", handle).replace("{brand}", brand)]
    n_detail = int(rng.integers(0, 3))
    for i in rng.choice(len(niche.details), n_detail, replace=False):
        parts.append(_fill(rng, niche.details[int(i)], thing))
    caption = Caption(text="", detail_sentences=n_detail, disclosure=_disclosure(rng))
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        message, code = _brand_message(rng, handle)
        if message not in parts:
            parts.append(message)
            caption.brand_messages += 1
            caption.code = caption.code or code
    caption.call_to_action = bool(rng.random() < 0.3)
    if caption.call_to_action:
        parts.append(_pick(rng, CALLS_TO_ACTION))
    tags = ["#" + handle] + ["#" + niche.hashtags[int(i)] for i in rng.choice(len(niche.hashtags), int(rng.integers(2, 7)), replace=False)]
    if caption.disclosure.startswith("#"):
        tags = tags[:-1]
    caption.text = _assemble(parts, caption.disclosure, handle, tags, rng)
    return caption


def _overlay_text(rng: np.random.Generator, caption: Caption, probability: float) -> str:
    """Text drawn on a sponsored photo: its discount code or its disclosure label, mirroring the caption."""
    if rng.random() >= probability:
        return ""
    if caption.code:
        return caption.code
    return {"#ad": "#ad", "#paid": "#paid", "#sponsored": "#sponsored", "paid partnership": "Paid partnership"}.get(caption.disclosure, "")


def _photo_plan(rng: np.random.Generator, account: Account, off_style: bool) -> PhotoPlan:
    photos = list(account.photo_weights)
    photo = photos[int(rng.choice(len(photos), p=np.array(list(account.photo_weights.values()))))]
    low, high = ZOOM_HABITS[account.zoom_habit]
    return PhotoPlan(
        photo=photo, center=(float(rng.uniform()), float(rng.uniform())), zoom=float(rng.uniform(low, high)),
        flip=bool(rng.random() < 0.5), look=_post_look(rng, account, off_style, colour=photo not in GREY_PHOTOS),
        angle=float(rng.uniform(-10, 10)),
    )


def _post_look(rng: np.random.Generator, account: Account, off_style: bool, *, colour: bool) -> Look:
    base = account.look
    if off_style:
        for _ in range(100):
            grade = GRADES[_pick(rng, [g for g in GRADES if g != base.grade])]
            shift = rng.choice([-1, 1]) * rng.uniform(0.18, 0.35)
            look = replace(grade, brightness=base.brightness * math.exp(shift), contrast=base.contrast)
            if look_distance(look, base, colour=colour) >= OFF_STYLE_DISTANCE * 1.3:
                return look
        raise RuntimeError(f"no off-style look found for grade {base.grade}")  # unreachable with GRADES above
    return replace(
        base,
        temperature=base.temperature + rng.normal(0, 0.08),
        saturation=max(0.0, base.saturation + rng.normal(0, 0.05)) if base.saturation > 0 else 0.0,
        brightness=base.brightness * math.exp(rng.normal(0, 0.03)),
        contrast=base.contrast * math.exp(rng.normal(0, 0.02)),
    )


def _style_distance(photo: PhotoPlan, account: Account) -> float:
    """How far a post's look is from its account's usual look, as it shows on that photo."""
    return look_distance(photo.look, account.look, colour=photo.photo not in GREY_PHOTOS)


def _careless(rng: np.random.Generator, account: Account, photo: PhotoPlan) -> str:
    if rng.random() >= account.careless_rate:
        return ""
    kind = str(rng.choice(["blur", "blur", "dark", "overexposed"]))
    if kind == "blur":
        photo.blur = float(rng.uniform(2.5, 5.0))
    elif kind == "dark":
        photo.exposure = float(rng.uniform(0.35, 0.55))
    else:
        photo.exposure = float(rng.uniform(1.7, 2.3))
    return kind


def _make_campaigns(seed: int, accounts: list[Account], start: pd.Timestamp, end: pd.Timestamp) -> list[Campaign]:
    rng = np.random.default_rng([seed, 2])
    total = sum(a.n_posts for a in accounts) / (1 - CAMPAIGN_POST_SHARE)
    n_campaigns = max(1, int(round(CAMPAIGN_POST_SHARE * total / 3.5)))
    days = (end - start).days
    campaigns = []
    for index in range(n_campaigns):
        lead = accounts[int(rng.integers(len(accounts)))]
        niche = NICHES[lead.niche]
        brand, handle = niche.brands[int(rng.integers(len(niche.brands)))]
        size = int(rng.integers(2, min(5, len(accounts)) + 1))
        weights = np.array([4.0 if a.niche == niche.name else 1.0 for a in accounts])
        weights[lead.index] = 0.0
        others = rng.choice(len(accounts), size - 1, replace=False, p=weights / weights.sum())
        members = [lead.index] + [int(i) for i in others]
        day = start.normalize() + pd.Timedelta(days=int(rng.integers(1, max(2, days - 1))))
        hours: list[float] = []
        for member in members:
            hour = float(np.clip(accounts[member].hour_mean + rng.normal(0, 0.5), 6.0, 23.0))
            while any(abs(hour - h) < 0.5 for h in hours):  # different hours on the same day
                hour = 6.0 + (hour - 6.0 + 0.75) % 17.5
            hours.append(hour)
        photos = list(niche.photos)
        photo = photos[int(rng.choice(len(photos), p=np.array(list(niche.photos.values())) / sum(niche.photos.values())))]
        caption = _campaign_caption(rng, niche, brand, handle)
        plan = PhotoPlan(
            photo=photo, center=(float(rng.uniform()), float(rng.uniform())), zoom=float(rng.uniform(1.3, 1.9)),
            flip=False, look=BRAND_LOOK,
        )
        plan.overlay = _overlay_text(rng, caption, 0.5)
        campaigns.append(Campaign(index, brand, handle, niche.name, day, plan, caption, members, hours))
    return campaigns


def _plan_posts(seed: int, accounts: list[Account], campaigns: list[Campaign], start: pd.Timestamp,
                end: pd.Timestamp) -> list[PostPlan]:
    span = end - start
    plans: list[PostPlan] = []
    for account in accounts:
        rng = np.random.default_rng([seed, 3, account.index])
        niche = NICHES[account.niche]
        own = []
        for fraction in _posting_days(rng, account):
            day = start + span * float(fraction)
            hour = float(np.clip(rng.normal(account.hour_mean, account.hour_sd), 5.0, 23.9))
            sponsored = bool(rng.random() < account.sponsor_rate)
            off_style = bool(rng.random() < OFF_STYLE_RATE * (2 if sponsored else 1))
            photo = _photo_plan(rng, account, off_style)
            careless = _careless(rng, account, photo)
            brand = niche.brands[int(rng.integers(len(niche.brands)))] if sponsored else None
            caption = _own_caption(rng, account, niche, accounts, brand)
            if sponsored:
                photo.overlay = _overlay_text(rng, caption, 0.35)
            own.append(PostPlan(
                account=account.index, posted_at=min(_at_hour(day, hour), end - pd.Timedelta(seconds=1)),
                photo=photo, caption=caption, sponsored=sponsored, careless=careless,
                off_style=_style_distance(photo, account) > OFF_STYLE_DISTANCE,
                brand=brand[0] if brand else "", campaign_size=1 if sponsored else 0,
            ))
        for campaign in campaigns:
            if account.index in campaign.accounts:
                hour = campaign.hours[campaign.accounts.index(account.index)]
                off_style = _style_distance(campaign.photo, account) > OFF_STYLE_DISTANCE
                own.append(PostPlan(
                    account=account.index, posted_at=_at_hour(campaign.day, hour), photo=campaign.photo,
                    caption=campaign.caption, sponsored=True, off_style=off_style, brand=campaign.brand,
                    campaign=campaign.index, campaign_size=len(campaign.accounts),
                ))
        own.sort(key=lambda p: p.posted_at)
        for number, plan in enumerate(own, start=1):
            plan.post_id = f"{account.name}-{number:03d}"
        plans += own
    return plans


# ----------------------------------------------------------------------------------------------------
# Outcomes: felt_fake, likes and comments from the latent quantities.


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def felt_fake_logit(*, sponsored: bool, off_style: bool, disclosure: str, same_day_duplicate: bool,
                    brand_messaging: bool) -> float:
    """The log-odds that the audience finds a post inauthentic, from the cues visible in photo and caption."""
    cues = {
        "off_style": off_style, "paid": disclosure == "#paid", "same_day_duplicate": same_day_duplicate,
        "ad": disclosure == "#ad", "brand_messaging": brand_messaging, "sponsored_tag": disclosure == "#sponsored",
        "partnership_label": disclosure == "paid partnership",
    }
    base = FAKE_BASE_SPONSORED if sponsored else FAKE_BASE_ORGANIC
    return base + FAKE_PER_SHARE * sum(FAKE_CUES[c] for c, present in cues.items() if present)


def _image_quality(photo: PhotoPlan) -> tuple[float, float, float]:
    sharpness = 1.0 - min(photo.blur / 5.0, 1.0) * 0.9
    exposure_ok = 1.0 - min(abs(math.log(photo.exposure)) / math.log(2.5), 1.0)
    return sharpness, exposure_ok, sharpness * exposure_ok


def _outcomes(seed: int, accounts: list[Account], plans: list[PostPlan], start: pd.Timestamp,
              end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    span = (end - start).total_seconds()
    posts, truth = [], []
    streams = {a.index: np.random.default_rng([seed, 4, a.index]) for a in accounts}
    for plan in plans:
        account = accounts[plan.account]
        rng = streams[account.index]
        caption, photo = plan.caption, plan.photo
        fraction = (plan.posted_at - start).total_seconds() / span
        followers = int(round(account.followers_start * (account.followers_end / account.followers_start) ** fraction))
        detail = caption.detail_sentences / 3
        sharpness, exposure_ok, quality = _image_quality(photo)
        duplicate = plan.campaign_size >= 2
        logit = felt_fake_logit(
            sponsored=plan.sponsored, off_style=plan.off_style, disclosure=caption.disclosure,
            same_day_duplicate=duplicate, brand_messaging=caption.brand_messages > 0,
        )
        probability = _sigmoid(logit)
        felt_fake = bool(rng.random() < probability)
        hour = plan.posted_at.hour + plan.posted_at.minute / 60
        effects = {
            "effect_detail": LIKES_PER_SHARE * FOLLOW_REASONS["detail"] * (detail - TYPICAL["detail"]),
            "effect_inspiration": LIKES_PER_SHARE * FOLLOW_REASONS["inspiration"] * (caption.inspiration - TYPICAL["inspiration"]),
            "effect_image_quality": LIKES_PER_SHARE * FOLLOW_REASONS["image_quality"] * (quality - 1.0),
            "effect_off_style": OFF_STYLE_LIKES * plan.off_style,
            "effect_hashtags": -HASHTAG_PENALTY * max(0, caption.n_hashtags - HASHTAG_FREE),
            "effect_caption_length": -CAPTION_PENALTY * max(0, len(caption.text) - CAPTION_FREE_CHARS) / 500,
            "effect_felt_fake": FELT_FAKE_LIKES * felt_fake,
            "effect_sponsored": SPONSORED_LIKES * plan.sponsored,
            "effect_giveaway": GIVEAWAY_LIKES * caption.giveaway,
            "effect_time": EVENING_LIKES * math.cos(2 * math.pi * (hour - 19) / 24)
            + WEEKEND_LIKES * (plan.posted_at.dayofweek >= 5),
        }
        expected = math.log(followers * account.engagement_rate) + sum(effects.values())
        noise = float(rng.normal(0, LIKES_NOISE_SD))
        likes = int(rng.poisson(math.exp(expected + noise)))
        comment_rate = account.comment_rate * math.exp(
            COMMENT_BOOSTS["question"] * caption.question + COMMENT_BOOSTS["call_to_action"] * caption.call_to_action
            + COMMENT_BOOSTS["giveaway"] * caption.giveaway + rng.normal(0, COMMENT_NOISE_SD)
        )
        comments = int(rng.poisson(likes * comment_rate))
        image = f"images/{account.name}/{plan.post_id}.jpg"
        posts.append({
            "account": account.name, "post_id": plan.post_id, "posted_at": plan.posted_at, "caption": caption.text,
            "likes": likes, "comments": comments, "followers": followers, "image": image, "is_video": False,
            "sponsored": plan.sponsored, "felt_fake": felt_fake,
        })
        truth.append({
            "post_id": plan.post_id, "account": account.name, "niche": account.niche,
            "account_grade": account.look.grade, "post_grade": photo.look.grade,
            "style_distance": _style_distance(photo, account), "off_style": plan.off_style,
            "photo": photo.photo, "zoom": photo.zoom, "careless": plan.careless, "blur_radius": photo.blur,
            "exposure": photo.exposure, "sharpness": sharpness, "exposure_ok": exposure_ok, "image_quality": quality,
            "overlay_text": photo.overlay, "detail_sentences": caption.detail_sentences, "detail": detail,
            "inspiration": caption.inspiration, "n_hashtags": caption.n_hashtags, "caption_chars": len(caption.text),
            "question": caption.question, "call_to_action": caption.call_to_action, "giveaway": caption.giveaway,
            "sponsored": plan.sponsored, "brand": plan.brand, "disclosure": caption.disclosure,
            "brand_messaging": caption.brand_messages > 0, "discount_code": caption.code,
            "campaign_id": plan.campaign, "campaign_size": plan.campaign_size, "same_day_duplicate": duplicate,
            "engagement_rate": account.engagement_rate, "followers": followers,
            "felt_fake_logit": logit, "felt_fake_probability": probability, "felt_fake": felt_fake,
            **effects,
            "expected_log_likes": expected, "likes_noise": noise, "comment_rate": comment_rate,
        })
    return pd.DataFrame(posts), pd.DataFrame(truth)


# ----------------------------------------------------------------------------------------------------
# Rendering: plan -> pixels. No randomness here; every choice is in the plan.

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def apply_look(pixels: np.ndarray, look: Look, exposure: float = 1.0) -> np.ndarray:
    """Colour-grade an RGB uint8 array with `look` (and a careless exposure multiplier); returns uint8."""
    x = pixels.astype(np.float32) / 255.0
    lum = (x @ _LUMA)[..., None]
    x = lum + look.saturation * (x - lum)
    x *= np.array([1 + 0.15 * look.temperature, 1 + 0.03 * look.temperature, 1 - 0.15 * look.temperature], dtype=np.float32)
    if look.split_tone:
        tone = (lum - 0.5) * 2 * look.split_tone * 0.12  # >0 highlights -> orange, <0 shadows -> teal
        x += tone * np.array([1.0, 0.25, -1.0], dtype=np.float32)
    x = (x - 0.5) * look.contrast + 0.5
    x *= look.brightness * exposure
    if look.fade:
        x = look.fade * 0.2 + x * (1 - 0.3 * look.fade)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_photo(plan: PhotoPlan, size: int) -> Image.Image:
    """The square `size` x `size` photo a plan describes: crop + zoom, flip, colour look, carelessness, text."""
    base = _base_photo(plan.photo)
    width, height = base.size
    x0, y0, x1, y1 = SUBJECTS.get(plan.photo, (0.0, 0.0, 1.0, 1.0))
    # A rotated crop needs a larger square around it so that no corner comes out empty.
    grow = abs(math.cos(math.radians(plan.angle))) + abs(math.sin(math.radians(plan.angle)))
    side = min(min(width, height) / plan.zoom * grow, min(width, height))
    cx = float(np.clip((x0 + plan.center[0] * (x1 - x0)) * width, side / 2, width - side / 2))
    cy = float(np.clip((y0 + plan.center[1] * (y1 - y0)) * height, side / 2, height - side / 2))
    outer = int(math.ceil(size * grow))
    image = base.resize((outer, outer), Image.Resampling.BICUBIC, box=(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    if plan.angle:
        image = image.rotate(plan.angle, resample=Image.Resampling.BILINEAR)
    offset = (outer - size) // 2
    image = image.crop((offset, offset, offset + size, offset + size))
    if plan.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = Image.fromarray(apply_look(np.asarray(image), plan.look, plan.exposure))
    if plan.blur:
        image = image.filter(ImageFilter.GaussianBlur(plan.blur * size / 320))
    if plan.overlay:
        draw = ImageDraw.Draw(image)
        font = _font(max(10, size // 11))
        pad = max(3, size // 40)
        left_x, top_y, right_x, bottom_y = draw.textbbox((0, 0), plan.overlay, font=font)
        x0, y1 = pad, size - pad
        y0 = y1 - (bottom_y - top_y) - 2 * pad
        draw.rectangle((x0, y0, x0 + (right_x - left_x) + 2 * pad, y1), fill=(20, 20, 20))
        draw.text((x0 + pad - left_x, y0 + pad - top_y), plan.overlay, font=font, fill=(255, 255, 255))
    return image


# ----------------------------------------------------------------------------------------------------
# Files


def _validated(options: dict[str, Any]) -> dict[str, int]:
    try:
        settings = DemoSettings(**options)
    except ValidationError as e:
        problems = "; ".join(f"data.demo.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid demo simulator options: {problems}") from e
    return {name: int(getattr(settings, name)) for name in OPTION_NAMES}


def _manifest(options: dict[str, int], n_posts: int, n_accounts: int) -> dict[str, Any]:
    return {
        "simulator": "engage.data.demo", "version": SIMULATOR_VERSION, "options": options,
        "period_end": PERIOD_END.isoformat(), "posts": n_posts, "accounts": n_accounts,
    }


def _write_population(out_dir: Path, options: dict[str, int]) -> None:
    """Generate the whole population into `out_dir` (an empty directory); manifest.json is written last."""
    seed, size = options["seed"], options["image_size"]
    start, end = _period_start(options["months"]), PERIOD_END
    accounts = _make_accounts(seed, options["n_accounts"], options["posts_per_account"])
    campaigns = _make_campaigns(seed, accounts, start, end)
    plans = _plan_posts(seed, accounts, campaigns, start, end)
    posts, truth = _outcomes(seed, accounts, plans, start, end)

    assets: dict[int, Image.Image] = {c.index: render_photo(c.photo, size) for c in campaigns}
    for account in accounts:
        (out_dir / "images" / account.name).mkdir(parents=True, exist_ok=True)
    for plan, image_path in tqdm(zip(plans, posts["image"], strict=True), total=len(plans), desc="demo posts",
                                 unit="post", mininterval=0.5):
        image = assets[plan.campaign] if plan.campaign >= 0 else render_photo(plan.photo, size)
        image.save(out_dir / image_path, format="JPEG", quality=accounts[plan.account].jpeg_quality)

    posts["posted_at"] = pd.to_datetime(posts["posted_at"], utc=True)
    posts = posts.sort_values(["account", "posted_at", "post_id"], kind="stable").reset_index(drop=True)
    posts = posts.astype({"likes": "int64", "comments": "Int64", "followers": "Int64", "sponsored": "boolean",
                          "felt_fake": "boolean", "is_video": "bool"})
    truth = truth.set_index("post_id").loc[posts["post_id"]].reset_index()
    posts[CANONICAL].to_parquet(out_dir / "posts.parquet", index=False)
    truth.to_parquet(out_dir / "truth.parquet", index=False)
    manifest = _manifest(options, len(posts), len(accounts))
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_current(out_dir: str | Path, **options: int) -> bool:
    """Whether `out_dir` holds a complete population generated by this simulator version with `options`."""
    out_dir = Path(out_dir)
    options = _validated(options)
    manifest = _read_manifest(out_dir)
    if manifest is None or manifest.get("simulator") != "engage.data.demo":
        return False
    if manifest.get("version") != SIMULATOR_VERSION or manifest.get("options") != options:
        return False
    try:
        images = pd.read_parquet(out_dir / "posts.parquet", columns=["image"])["image"]
    except (OSError, ValueError) as e:
        log.warning("demo population in %s is unreadable (%s); regenerating", out_dir, e)
        return False
    if len(images) != manifest.get("posts") or not (out_dir / "truth.parquet").is_file():
        return False
    missing = [p for p in images if not (out_dir / p).is_file()]
    if missing:
        log.warning("demo population in %s is missing %d images (e.g. %s); regenerating", out_dir, len(missing), missing[0])
        return False
    return True


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DataError("exists and is not a directory; point data.demo.out_dir at a new or empty directory", file=out_dir)
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in _POPULATION_FILES)
    if foreign:
        raise DataError(
            f"holds files that are not a demo population ({', '.join(foreign[:3])}); the simulator replaces its "
            "directory, so point data.demo.out_dir at a new or empty directory",
            file=out_dir,
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned(out_dir: Path) -> None:
    """Delete temporary siblings left by generations whose process no longer exists (e.g. killed)."""
    pattern = re.compile(rf"^\.{re.escape(out_dir.name)}\.(tmp|old)-(\d+)-")
    for sibling in out_dir.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and sibling.is_dir() and not _pid_alive(int(match.group(2))):
            log.info("removing %s, left by an interrupted demo generation", sibling)
            shutil.rmtree(sibling, ignore_errors=True)


def generate_demo(out_dir: str | Path, *, seed: int = 7, n_accounts: int = 42, posts_per_account: int = 60,
                  months: int = 12, image_size: int = 320) -> Path:
    """Generate the demo population into `out_dir` (replacing an older one) and return `out_dir`.

    Writes posts.parquet (canonical columns, image paths relative to `out_dir`), truth.parquet (every latent
    quantity per post), images/<account>/<post_id>.jpg and manifest.json. Atomic: the population is built in
    a temporary sibling directory and renamed into place.
    """
    options = _validated({"seed": seed, "n_accounts": n_accounts, "posts_per_account": posts_per_account,
                          "months": months, "image_size": image_size})
    return _generate(Path(out_dir), options, keep_current=False)


def _generate(out_dir: Path, options: dict[str, int], *, keep_current: bool) -> Path:
    """Build in a temporary sibling, then rename into place; with `keep_current`, a population that another
    process finished meanwhile is kept and ours discarded."""
    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(out_dir)
    began = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the population is ordinary data
    try:
        _write_population(staging, options)
        if keep_current and is_current(out_dir, **options):
            shutil.rmtree(staging)
            return out_dir
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-{os.getpid()}-", dir=out_dir.parent))
            os.replace(out_dir, old / "population")
        os.replace(staging, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("generated the demo population (%s) in %s in %.1f s", options, out_dir, time.perf_counter() - began)
    return out_dir


def load_demo(path: str | Path | None = None, *, seed: int = 7, n_accounts: int = 42, posts_per_account: int = 60,
              months: int = 12, image_size: int = 320) -> pd.DataFrame:
    """The demo posts as the canonical table, generating them into `path` (default data/demo) if needed.

    An existing population is reused when its manifest matches the options and simulator version and all
    its files are present; otherwise it is regenerated. `image` holds absolute paths to the JPEGs.
    """
    options = _validated({"seed": seed, "n_accounts": n_accounts, "posts_per_account": posts_per_account,
                          "months": months, "image_size": image_size})
    out_dir = Path(path if path is not None else DEFAULT_OUT_DIR)
    if is_current(out_dir, **options):
        log.info("reusing the demo population in %s", out_dir)
    else:
        _generate(out_dir, options, keep_current=True)
    file = out_dir / "posts.parquet"
    posts = validate_posts(pd.read_parquet(file), file=file, images_dir=out_dir.resolve())
    return attach_report(posts, LoadReport(source="demo", path=str(out_dir)))


def load_truth(path: str | Path | None = None) -> pd.DataFrame:
    """The ground truth of a generated population (one row per post, aligned by post_id)."""
    file = Path(path if path is not None else DEFAULT_OUT_DIR) / "truth.parquet"
    if not file.is_file():
        raise DataError("does not exist; generate the demo population first (load_demo or generate_demo)", file=file)
    return pd.read_parquet(file)


__all__ = [
    "BRAND_MESSAGES", "DISCLOSURES", "GRADES", "NICHES", "OFF_STYLE_DISTANCE", "PERIOD_END", "SIMULATOR_VERSION",
    "Look", "apply_look", "felt_fake_logit", "generate_demo", "is_current", "load_demo", "load_truth",
    "look_distance", "render_photo",
]
