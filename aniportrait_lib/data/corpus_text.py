"""What the mini corpus says, and with which voices.

The sentences were written for this kit (no licence attaches to them). They mix open and closed
vowels, lip consonants (p, b, m, f, v) and rounded sounds so that every mouth shape occurs often.
"""

SENTENCES: tuple[str, ...] = (
    "Maybe the big brown bear will bring more berries.",
    "Please pass me the paper map before we move.",
    "We should look at the moon over the blue pool.",
    "I see three green trees by the little creek.",
    "Father always wanted a large car for the farm.",
    "Open the window and feel the warm morning air.",
    "Bob bought a bottle of milk for his mother.",
    "The quick red fox jumps over a lazy dog.",
    "Few voices were heard above the falling water.",
    "My brother plays the piano every Monday evening.",
    "Who knew the tune would move so many of you?",
    "Eat your peas, then we can leave the table.",
    "A bright kite flew high above the wide beach.",
    "Paul opened the box and found a small gold watch.",
    "Mom made warm muffins with butter and maple syrup.",
    "The rain in the valley fell for five long days.",
    "Our boat floated slowly along the old canal.",
    "Victor loves fresh fish and a bowl of soup.",
    "She keeps a tiny puppy in a woven basket.",
    "Many people wave when the parade passes by.",
    "Ask the pilot about the weather over the mountains.",
    "Two blue balloons bobbed above the busy market.",
    "Every evening we walk past the bakery on the corner.",
    "The painter mixed purple and amber on his palette.",
    "Do you remember the movie we watched in June?",
    "Beautiful music filled the room until midnight.",
    "Peter picked a peck of pickled peppers.",
    "Oh, what a wonderful view from the top of the hill!",
    "Bring me a bowl of plums and a bag of apples.",
    "The baby laughed as the bubbles popped around her.",
    "Move the lamp a bit more to the left, please.",
    "A few owls hooted softly in the moonlight.",
    "We often visit my uncle who lives by the sea.",
    "Mark my words, the problem will be fixed by Friday.",
    "The old map showed a path through the woods.",
    "Bees buzz from flower to flower all summer.",
    "Put the blue cup back on the top shelf.",
    "How far away is the museum from the harbour?",
    "Fresh bread and warm soup make a fine meal.",
    "My favourite food is pasta with lemon and basil.",
    "Wave goodbye before the train leaves the platform.",
    "The poem was about memory, time and the ocean.",
    "Be brave and say what you mean, he whispered.",
    "Oliver opened an umbrella as the storm moved in.",
    "Five wise men met by the fountain at noon.",
    "People say that maple leaves turn red in autumn.",
    "I bought a map, a pen and a small blue notebook.",
    "Welcome back, we missed you very much.",
)

VOICES: tuple[str, ...] = (
    "en",
    "en-us",
    "en+f1",
    "en+m3",
    "en-gb-scotland",
    "en-us+f4",
    "en+m5",
    "en-gb-x-rp",
)
"""eSpeak NG voices (with variants) shipped in the espeakng-loader wheel. Only variants without
breath noise: eSpeak seeds that noise from the clock, which would make the corpus irreproducible
(tests/data/test_mini_corpus.py checks every voice)."""
