"""Write the classroom notebooks (docs/notebooks/*.ipynb), unexecuted, from the cells below.

Usage: python docs/notebooks/make_notebooks.py [FOLDER]   (default: this folder)

The notebooks are committed as this script writes them (no outputs: small, never stale); the
test suite executes every one (tests/test_notebooks.py) and checks that the committed files are
what this script makes, and the docs site executes them when it is built (mkdocs-jupyter).
Edit the cells here, run the script, commit both.
"""
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

#: Every notebook starts with this cell: imports and the samples folder, found from the
#: notebook's folder (docs/notebooks) or the repository root.
SETUP = """\
from pathlib import Path

import numpy as np
from PIL import Image

import imgfilt
from imgfilt import FilterBank, Sequential, display
from imgfilt.cli import main as imgfilt_command  # imgfilt_command([...]) runs `imgfilt ...`

SAMPLES = next(folder / "samples" for folder in [Path.cwd(), *Path.cwd().parents]
               if (folder / "samples" / "camera.png").exists())"""

NOTEBOOKS = {
    "01-sum-of-products": ("Lesson 1: one output element is a sum of products", [
        "A convolution layer slides a small kernel over the input and, at each place, multiplies "
        "the window by the kernel and adds everything up. The 3x3 input and 2x2 kernel of *Dive "
        "into Deep Learning* §7.2:",
        "x = np.arange(9.0).reshape(1, 3, 3)        # (C_in, H, W)\n"
        "w = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])  # (C_out, C_in, kH, kW)\n"
        "imgfilt.conv(x, w)",
        "`imgfilt explain` writes the first element's sum out:",
        'imgfilt_command(["explain"]);',
        "The same, as a page you can step through: press **next**, or tick *one product at a "
        "time* and press **play**. Click an output cell to jump to it.",
        "imgfilt.explain()",
        "Ask the class for the element at row 1, column 1 before running this:",
        'imgfilt_command(["explain", "--at", "1,1"]);',
        "The kernel is *not* flipped: deep-learning libraries' convolution is cross-correlation. "
        "True convolution flips it:",
        "imgfilt.convolve(x, w), imgfilt.conv(x, w[..., ::-1, ::-1])",
    ]),
    "02-channels-and-bias": ("Lesson 2: several input channels, and a bias", [
        "A filter has one kernel slice per input channel; it sums *everything*, across channels "
        "too, plus one bias. The two-channel example of *Dive into Deep Learning* §7.4:",
        "x = np.array([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]], float)\n"
        "w = np.array([[[[0, 1], [2, 3]], [[1, 2], [3, 4]]]], float)\n"
        "imgfilt.conv(x, w, np.array([1.0]))",
        "One grid per channel, summed; step through the four elements:",
        "imgfilt.explain(x, w, bias=1)",
        "A filter of imgfilt is data and draws itself: `edge` looks at the red channel of a "
        "colour picture only, so its green and blue slices are zero.",
        'imgfilt.get_filter("edge")',
        "One filter gives one output channel (a *feature map*), whatever the number of input "
        "channels.",
    ]),
    "03-padding-and-stride": ("Lesson 3: padding and stride", [
        "Padding adds a border so the kernel can sit on the edge; a stride of 2 moves the window "
        "two cells at a time. The padded cells say where they come from.",
        "imgfilt.explain(padding=1, stride=2)",
        "Other borders than zeros: each padded cell copies the input cell written under it "
        "(hover over it to see the cell it copies).",
        'signal = np.array([1.0, 2, 3, 4, 5])\n'
        'imgfilt.explain(signal, [1.0, 0, -1], ndim=1, padding=2, padding_mode="reflect")',
        "The five modes on one signal, as `numpy.pad` would write them:",
        'for mode in ["zeros", "reflect", "replicate", "circular", "symmetric"]:\n'
        '    sources = imgfilt.padding.index_map(5, 3, 3, mode)\n'
        '    print(f"{mode:10}", np.where(sources >= 0, signal[sources], 0))',
        "Exercise: with padding 1 and stride 2 the 3x3 input gives a 2x2 output. Why?",
        "imgfilt.plan((1, 3, 3), \"float64\", (1, 1, 2, 2), padding=1, stride=2).out_shape",
    ]),
    "04-shapes-through-a-network": ("Lesson 4: the shapes through a network", [
        "The output size of a layer is `floor((n + p_before + p_after - d·(k - 1) - 1) / s) + 1`. "
        "The first two layers of LeNet-5 on a 32x32 grey image:",
        'imgfilt_command(["shape", "--input", "32x32x1", "--filters", "6", "--kernel", "5",\n'
        '                 "--then", "16:5"]);',
        "The same network as imgfilt objects (the weights are zeros: only the shapes matter):",
        "lenet = Sequential(FilterBank(np.zeros((6, 1, 5, 5))), FilterBank(np.zeros((16, 6, 5, 5))))\n"
        'lenet.show((1, 32, 32), padding="valid")',
        "Exercise (CS231n): 32x32x3 input, 10 filters of 5x5, stride 1, padding 2. Predict the "
        "output shape and the number of parameters, then check:",
        "layer = FilterBank(np.zeros((10, 3, 5, 5)))\n"
        "layer.output_shape((3, 32, 32), padding=2), layer.n_params",
    ]),
    "05-edges-on-a-photo": ("Lesson 5: edges on a real photograph", [
        "A kernel is just numbers, coloured here by sign (red positive, blue negative) and size:",
        'sobel_x = imgfilt.get_filter("sobel_x")\nsobel_x',
        "`sobel_x` responds to vertical edges (changes from left to right), with both signs; "
        "`sobel` is the gradient magnitude, edges in every direction.",
        'coffee = np.asarray(Image.open(SAMPLES / "coffee.png").convert("L"), dtype=np.float32)\n'
        'names = ["sobel_x", "sobel_y", "sobel", "laplacian"]\n'
        "display.feature_maps([coffee] + [imgfilt.apply(coffee, name) for name in names],\n"
        '                     ["photo"] + names)',
        "A large kernel is drawn as a picture: a Gaussian of sigma 3 is 25x25.",
        'imgfilt.get_filter("gaussian", sigma=3)',
        "Try `emboss`, `sharpen`, `scharr_x`; `imgfilt_command([\"list\"])` lists them all.",
    ]),
    "06-bank-of-filters": ("Lesson 6: a bank of filters makes feature maps", [
        "The first layer of a convolutional network is a bank of filters, each giving one "
        "feature map. `samples/edges.npz` holds six edge detectors:",
        'edges = FilterBank.load(SAMPLES / "edges.npz")\nedges',
        'camera = np.asarray(Image.open(SAMPLES / "camera.png"))\n'
        "maps = edges.apply(camera)\nmaps.shape",
        "`maps` is the `(6, 512, 512)` array a network's next layer would read:",
        "edges.show(maps)",
    ]),
    "07-a-layer-learns": ("Lesson 7: a layer learns its kernel", [
        "Training a convolution layer means finding the kernel that turns inputs into the wanted "
        "outputs; for one linear layer that is least squares, which `imgfilt.learn.fit` solves "
        "exactly. Blur a photo with a 5x5 box (every weight 1/25 = 0.04) and ask for the kernel:",
        'camera = np.asarray(Image.open(SAMPLES / "camera.png"))\n'
        'blurred = imgfilt.apply(camera, "box", size=5)  # uint8, rounded to whole grey levels\n'
        'learned = imgfilt.learn.fit(camera[None], blurred[None], 5)\nlearned',
        "Every weight within a few ten-thousandths of 0.04 (not exactly: the blurred picture was "
        "rounded to whole grey levels):",
        "np.abs(learned.weight - 0.04).max(), imgfilt.learn.score(learned, camera[None], blurred[None])",
    ]),
    "08-multichannel-multifilter": ("Multi-channel, multi-filter layers", [
        "A layer with `C_in` input channels and `C_out` filters has a weight "
        "`(C_out, C_in, kH, kW)`: every filter sees every channel. Three channels, two filters, "
        "one bias each; pick the output channel in the page:",
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 5, size=(3, 4, 4)).astype(float)\n"
        "w = rng.integers(-1, 2, size=(2, 3, 3, 3)).astype(float)\n"
        "imgfilt.explain(x, w, bias=[0, 1], padding=1)",
        "On a colour photo: four filters that mix R, G and B (a luminance edge in x and in y, "
        "red minus green, and blue):",
        'sobel = imgfilt.get_filter("sobel_x").kernel\n'
        "luma = np.array([0.299, 0.587, 0.114])[:, None, None]\n"
        "point = np.zeros((3, 3)); point[1, 1] = 1\n"
        "weight = np.stack([luma * sobel, luma * sobel.T,\n"
        "                   np.stack([point, -point, 0 * point]), np.stack([0 * point, 0 * point, point])])\n"
        'bank = FilterBank(weight, names=["luma dx", "luma dy", "red - green", "blue"])\n'
        "bank",
        'chelsea = np.asarray(Image.open(SAMPLES / "chelsea.png"))  # (H, W, 3)\n'
        "bank.show(bank.apply(chelsea))",
        "With `groups=3` each filter sees one channel only (a *depthwise* layer): the weight is "
        "`(3, 1, 3, 3)`, a third of the parameters.",
        'depthwise = FilterBank(np.stack([sobel[None]] * 3), groups=3, names=["R dx", "G dx", "B dx"])\n'
        "depthwise.show(depthwise.apply(chelsea))",
    ]),
    "09-padding-stride-shapes": ("Padding, stride and shapes through a small network", [
        "Stride 2 and dilation 2 on a 7x7 input with padding 1: the window skips every other "
        "cell and jumps two cells at a time.",
        "imgfilt.explain(np.arange(49.0).reshape(7, 7), np.ones((3, 3)), stride=2, dilation=2, "
        "padding=1)",
        "A small network, three 3x3 layers: with `'same'` padding the size stays, with `'valid'` "
        "it shrinks by 2 per layer, with stride 2 it halves.",
        "net = Sequential(FilterBank(np.zeros((8, 3, 3, 3))), FilterBank(np.zeros((16, 8, 3, 3))),\n"
        "                 FilterBank(np.zeros((32, 16, 3, 3))))\n"
        'net.show((3, 64, 64), padding="same")',
        'net.show((3, 64, 64), padding="valid")',
        'net.show((3, 64, 64), padding=1, stride=2)',
        "The formula for one axis, checked against `plan` for a few sizes:",
        "for n, k, p, s, d in [(64, 3, 1, 2, 1), (28, 5, 0, 1, 1), (7, 3, 1, 2, 2), (10, 4, 0, 3, 1)]:\n"
        "    formula = (n + 2 * p - d * (k - 1) - 1) // s + 1\n"
        '    planned = imgfilt.plan((1, n), "float64", (1, 1, k), padding=p, stride=s, dilation=d).out_shape[0]\n'
        "    print(f\"n={n} k={k} p={p} s={s} d={d}: {formula} {planned}\")",
    ]),
    "10-one-by-one": ("1x1 convolution", [
        "A 1x1 kernel sees one pixel, but all its channels: a 1x1 layer is the same matrix "
        "multiplication at every pixel, mixing `C_in` channels into `C_out`.",
        "rng = np.random.default_rng(1)\n"
        "x = rng.integers(0, 4, size=(3, 3, 3)).astype(float)\n"
        "w = rng.integers(-2, 3, size=(2, 3, 1, 1)).astype(float)\n"
        "imgfilt.explain(x, w)",
        "The same numbers as a matrix product over the channel axis:",
        'np.array_equal(imgfilt.conv(x, w), np.einsum("oc,chw->ohw", w[:, :, 0, 0], x))',
        "A colour photo to grey with a 1x1 layer (ITU-R 601 luminance, what Pillow's "
        "`convert(\"L\")` uses):",
        'chelsea = np.asarray(Image.open(SAMPLES / "chelsea.png"))\n'
        "grey = FilterBank(np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1), names=[\"grey\"])\n"
        "ours = grey.apply(chelsea)[0]\n"
        'pillow = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("L"), dtype=float)\n'
        "np.abs(ours - pillow).max()  # Pillow rounds to whole grey levels",
        "grey.show(grey.apply(chelsea))",
    ]),
    "11-volumes": ("3-D convolution on a CT-like volume", [
        "`samples/phantom.npy` is a 64x64x64 CT-like phantom (`(D, H, W)`, uint8). A 3-D kernel "
        "slides along depth too; here every eighth slice:",
        'volume = np.load(SAMPLES / "phantom.npy")\n'
        "display.feature_maps(volume[::8], [f\"slice {z}\" for z in range(0, 64, 8)])",
        "A 3-D Sobel magnitude finds the surfaces of the ellipsoids in every direction:",
        'edges = imgfilt.apply(volume.astype(np.float32), "sobel3d")\n'
        "display.feature_maps(edges[::8], [f\"slice {z}\" for z in range(0, 64, 8)])",
        "The kernel of `sobel3d`'s first response, plane by plane:",
        'imgfilt.get_filter("sobel3d")',
        "The window over a small volume, slice by slice: a 2x2x2 kernel reads two planes of the "
        "(padded) volume for each output element.",
        "cube = np.arange(27.0).reshape(3, 3, 3)\n"
        "imgfilt.explain(cube, np.ones((2, 2, 2)), ndim=3, padding=1, padding_mode=\"replicate\", stride=2)",
    ]),
    "12-fitting-a-filter": ("Fitting a filter from examples", [
        "`imgfilt.learn.fit` finds the layer that maps inputs to targets in least squares. "
        "Targets: the Sobel x and y responses of a colour photo's luminance. The fitted 3 -> 2 "
        "layer should be the Sobel kernels weighted by the luminance coefficients of R, G and B.",
        'chelsea = np.asarray(Image.open(SAMPLES / "chelsea.png"), dtype=float)\n'
        "x = np.moveaxis(chelsea, -1, 0)                    # (3, H, W)\n"
        "luma = np.tensordot([0.299, 0.587, 0.114], x, axes=1)[None]\n"
        'sobel = FilterBank([imgfilt.get_filter("sobel_x"), imgfilt.get_filter("sobel_y")])\n'
        'y = imgfilt.conv(luma, sobel.weight, padding="same", padding_mode="reflect")\n'
        "fitted = imgfilt.learn.fit(x, y, 3)\nfitted",
        "How close: the largest difference from the expected weight, and the fit's score:",
        "expected = np.array([0.299, 0.587, 0.114])[None, :, None, None] * sobel.weight\n"
        "np.abs(fitted.weight - expected).max(), imgfilt.learn.score(fitted, x, y)",
        "With noise on the targets the fit is no longer exact, but close:",
        "noisy = y + np.random.default_rng(0).normal(scale=5, size=y.shape)\n"
        "refit = imgfilt.learn.fit(x, noisy, 3)\n"
        "np.abs(refit.weight - expected).max(), imgfilt.learn.score(refit, x, noisy)",
    ]),
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name``: a title, the setup cell, then its cells (prose and code alternate,
    code recognised by not being prose: a cell is code when it parses as Python)."""
    title, cells = NOTEBOOKS[name]
    notebook = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    notebook.cells.append(new_markdown_cell(f"# {title}\n\nPart of imgfilt's classroom "
                                            "(docs/classroom.md); run the cells top to bottom."))
    notebook.cells.append(new_code_cell(SETUP))
    for text in cells:
        notebook.cells.append(new_code_cell(text) if _is_code(text) else new_markdown_cell(text))
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{index:02d}"  # stable ids: regenerating changes nothing
    return notebook


def _is_code(text: str) -> bool:
    try:
        compile(text, "<cell>", "exec")
    except SyntaxError:
        return False
    return True


def write_all(folder: Path) -> list[Path]:
    """Write every notebook into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NOTEBOOKS:
        path = folder / f"{name}.ipynb"
        nbformat.validate(notebook := build(name))
        path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
