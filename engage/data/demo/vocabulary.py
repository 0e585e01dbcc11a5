"""The demo's vocabulary, as data: sample photos and where their subjects are, niches (photo pools and
caption material), names, caption phrases, and the colour looks with their distance in visible steps.

Nothing here draws a random number; engage/data/demo/plans.py draws from these tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


#: Where the subject of each photo is: crop centres are drawn inside this box (fractions of width, height),
#: so that crops show the subject rather than empty sky or background. Photos not listed: anywhere.
SUBJECTS: dict[str, tuple[float, float, float, float]] = {
    "rocket": (0.38, 0.3, 0.62, 0.8), "retina": (0.25, 0.25, 0.75, 0.75), "coffee": (0.3, 0.3, 0.7, 0.7),
    "color": (0.3, 0.3, 0.7, 0.7), "chelsea": (0.3, 0.2, 0.75, 0.8), "horse": (0.2, 0.3, 0.8, 0.7),
    "camera": (0.25, 0.2, 0.7, 0.8), "motorcycle_left": (0.25, 0.4, 0.75, 0.75),
    "motorcycle_right": (0.25, 0.4, 0.75, 0.75), "moon": (0.2, 0.2, 0.8, 0.9), "cell": (0.5, 0.5, 0.85, 0.8),
}


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
