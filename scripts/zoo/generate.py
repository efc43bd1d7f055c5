#!/usr/bin/env python3
"""
The architecture zoo of the tests: small-width versions of the classic CNN families, written
by torch.onnx.export exactly as users' PyTorch models are (Shape/Gather/Concat flatten,
explicit Pad, ReLU6 as Clip with inputs, channel shuffle, input normalisation inside the
model, ...), plus one graph in the form tf2onnx writes a Keras NHWC model, at opsets 7 to 17
as torch writes them and 18 to 21 as opset-17 exports rewritten into those opsets' forms
(upgrade() below; torch 1.13 and onnx 1.12's version converter stop at 17). Weights are random
(seeded): the tests check structure and exactness, not accuracy.

Only needed to regenerate test/fixtures/zoo (Debian: apt-get install python3-torch python3-onnx);
the tests read the committed files. Run: /usr/bin/python3 scripts/zoo/generate.py [NAME ...]
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures', 'zoo')
torch.manual_seed(20261127)


def bn_relu(cin, cout, k=3, s=1, p=1, groups=1, relu6=False):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6() if relu6 else nn.ReLU(),
    )


class AlexNet(nn.Module):
    """AlexNet layout; flatten with x.view(x.size(0), -1), the Shape -> Gather -> Concat form."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, 2, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(16 * 3 * 3, 32), nn.ReLU(inplace=True), nn.Linear(32, 10))

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


class VGG(nn.Module):
    """VGG with BatchNorm, torch.flatten, input normalisation (x - mean) / std inside the model."""

    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.features = nn.Sequential(bn_relu(3, 8), bn_relu(8, 8), nn.MaxPool2d(2), bn_relu(8, 16), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = bn_relu(cin, cout, s=stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + self.skip(x))


class Bottleneck(nn.Module):
    def __init__(self, cin, mid, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            bn_relu(cin, mid, 1, 1, 0), bn_relu(mid, mid, 3, stride, 1),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class ResNet(nn.Module):
    def __init__(self, bottleneck):
        super().__init__()
        self.stem = nn.Sequential(bn_relu(3, 8, 3, 1, 1), nn.MaxPool2d(3, 2, 1))
        if bottleneck:
            self.blocks = nn.Sequential(Bottleneck(8, 4, 16, 1), Bottleneck(16, 8, 24, 2))
            width = 24
        else:
            self.blocks = nn.Sequential(Basic(8, 8, 1), Basic(8, 16, 2))
            width = 16
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.s = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=True))
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x):
        x = self.s(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


class SqueezeNet(nn.Module):
    def __init__(self, version):
        super().__init__()
        stem = [nn.Conv2d(3, 16, 7 if version == '1_0' else 3, 2), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(
            *stem, nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 4, 8), Fire(16, 4, 8),
            nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 16),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(32, 10, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class MobileNetV1(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [bn_relu(3, 8, 3, 2, 1, relu6=True)]
        for cin, cout, s in [(8, 16, 1), (16, 24, 2), (24, 24, 1)]:
            layers += [bn_relu(cin, cin, 3, s, 1, groups=cin, relu6=True), bn_relu(cin, cout, 1, 1, 0, relu6=True)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean([2, 3]))  # ReduceMean over the spatial axes


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            bn_relu(cin, mid, 1, 1, 0, relu6=True), bn_relu(mid, mid, 3, stride, 1, groups=mid, relu6=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            bn_relu(3, 8, 3, 2, 1, relu6=True), InvertedResidual(8, 8, 1, 2), InvertedResidual(8, 16, 2, 3),
            InvertedResidual(16, 16, 1, 3), bn_relu(16, 32, 1, 1, 0, relu6=True),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class ShuffleBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.branch = nn.Sequential(
            bn_relu(half, half, 1, 1, 0), nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            bn_relu(half, half, 1, 1, 0),
        )

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((a, self.branch(b)), 1), 2)


class ShuffleNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(bn_relu(3, 16, 3, 2, 1), nn.MaxPool2d(3, 2, 1))
        self.stage = nn.Sequential(ShuffleBlock(16), ShuffleBlock(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.stage(self.stem(x)).mean([2, 3]))


class Inception(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.b1 = bn_relu(cin, 8, 1, 1, 0)
        self.b2 = nn.Sequential(bn_relu(cin, 4, 1, 1, 0), bn_relu(4, 8, 3, 1, 1))
        self.b3 = nn.Sequential(bn_relu(cin, 4, 1, 1, 0), bn_relu(4, 4, 5, 1, 2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), bn_relu(cin, 4, 1, 1, 0))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(bn_relu(3, 12, 3, 2, 1), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.inc = nn.Sequential(Inception(12), Inception(24))
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.inc(self.stem(x)), 1)
        return self.fc(torch.flatten(x, 1))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], 1)


class DenseNet(nn.Module):
    """Pre-activation dense blocks: BatchNorm + ReLU before each convolution, AvgPool transitions."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.block1 = nn.Sequential(DenseLayer(8, 4), DenseLayer(12, 4))
        self.trans = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 8, 1, bias=False), nn.AvgPool2d(2))
        self.block2 = nn.Sequential(DenseLayer(8, 4), DenseLayer(12, 4))
        self.norm = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.trans(self.block1(self.stem(x))))
        x = F.relu(self.norm(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1))


class PaddedLeaky(nn.Module):
    """Explicit F.pad before convolutions and pools, LeakyReLU and PReLU activations."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3)
        self.c2 = nn.Conv2d(8, 16, 3, 2)
        self.prelu = nn.PReLU(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.leaky_relu(self.c1(F.pad(x, (1, 1, 1, 1))), 0.1)
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2)
        x = self.prelu(self.c2(F.pad(x, (1, 1, 1, 1))))
        return self.fc(x.mean([2, 3]))


class Legacy(nn.Module):
    """What old exporters wrote (opsets 7 and 8): explicit F.pad, BatchNorm, ReLU6 (Clip with
    min/max attributes, and F.relu6 as Relu + Clip), a channel split (Split with its `split`
    attribute), channel shuffle, a Pad before a MaxPool, x.mean / x.amax over the spatial axes
    (ReduceMean / ReduceMax with `axes` attributes), Unsqueeze / Squeeze with attributes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.branch = nn.Sequential(
            nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 1),
        )
        self.bn = nn.BatchNorm2d(16)  # after a Reshape: not folded by the exporter, an affine layer
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(F.pad(x, (1, 1, 1, 1)))
        a, b = torch.split(x, [8, 8], 1)
        x = self.bn(channel_shuffle(torch.cat((a, F.relu6(self.branch(b))), 1), 2))
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2)
        pooled = torch.cat((x.mean([2, 3]), x.amax([2, 3])), 1)
        return self.fc(pooled.unsqueeze(2).squeeze(2))


class Modern(nn.Module):
    """The same layer idioms for the opset-18+ forms: torch.split (Split, rewritten to
    num_outputs), F.pad with constant pads (rewritten to Pad with its `axes` input), ReLU6,
    x.mean / x.amax (ReduceMean / ReduceMax with `axes` as an input), Unsqueeze / Squeeze,
    x.view(x.size(0), -1) (Shape, Gather, Concat, Reshape)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.branch = nn.Sequential(bn_relu(8, 8, 1, 1, 0), nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.ReLU6())
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(F.pad(x, (1, 1, 1, 1)))
        a, b = torch.split(x, [8, 8], 1)
        x = channel_shuffle(torch.cat((a, self.branch(b)), 1), 2)
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2)
        pooled = torch.cat((x.mean([2, 3], keepdim=True), x.amax([2, 3], keepdim=True)), 1)
        return self.fc(pooled.view(pooled.size(0), -1).unsqueeze(1).squeeze(1))


MODELS = [
    ('alexnet', AlexNet, 9),
    ('vgg', VGG, 11),
    ('resnet_basic', lambda: ResNet(False), 13),
    ('resnet_bottleneck', lambda: ResNet(True), 17),
    ('squeezenet1_0', lambda: SqueezeNet('1_0'), 10),
    ('squeezenet1_1', lambda: SqueezeNet('1_1'), 12),
    ('mobilenet_v1', MobileNetV1, 11),
    ('mobilenet_v2', MobileNetV2, 13),
    ('shufflenet_v2', ShuffleNetV2, 13),
    ('googlenet', GoogLeNet, 11),
    ('densenet', DenseNet, 12),
    ('padded_leaky', PaddedLeaky, 14),
    ('legacy_op7', Legacy, 7),
    ('mobilenet_v2_op8', MobileNetV2, 8),
]

# The opset-18+ forms, which torch 1.13 cannot write: exported at 17 with constant folding (so
# that pads and split sizes are initializers), then rewritten node by node by upgrade() below.
UPGRADED = [
    ('modern_op18', Modern, 18),
    ('padded_leaky_op19', PaddedLeaky, 19),
    ('mobilenet_v1_op20', MobileNetV1, 20),
    ('modern_op21', Modern, 21),
]


def randomize_bn(model):
    """Trained-looking BatchNorm statistics, so folding is exercised with non-trivial values."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
        if isinstance(m, nn.PReLU):
            m.weight.data.uniform_(0.05, 0.3, generator=g)


def export_torch(name, factory, opset, path=None, fold=False):
    model = factory().eval()
    randomize_bn(model)
    x = torch.rand(1, 3, 32, 32)
    path = path or os.path.join(OUT, f'{name}.onnx')
    torch.onnx.export(
        model, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
        dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=fold,
    )
    if opset < 9:
        old_forms(path)
    print(f'{name}: opset {opset}, {os.path.getsize(path)} bytes')


def old_forms(path):
    """What opset-7/8 exporters wrote and torch in eval mode leaves out: BatchNormalization with
    its `spatial` attribute (1, per channel) and a Dropout with its `ratio` attribute before
    each Gemm (a no-op at inference)."""
    import onnx
    from onnx import helper

    model = onnx.load(path)
    g = model.graph
    nodes = []
    for n in g.node:
        if n.op_type == 'BatchNormalization':
            n.attribute.append(helper.make_attribute('spatial', 1))
        if n.op_type == 'Gemm':
            dropped = n.input[0] + '_dropout'
            nodes.append(helper.make_node('Dropout', [n.input[0]], [dropped], ratio=0.2, name=n.name + '_dropout'))
            n.input[0] = dropped
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, path)


# Reductions whose `axes` attribute became an input at opset 18 (ReduceSum changed at 13).
REDUCE_18 = {'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
             'ReduceLogSumExp', 'ReduceSumSquare'}
# The IR version that goes with each opset (onnx/docs/Versioning.md).
IR_OF_OPSET = {18: 8, 19: 9, 20: 9, 21: 10}


def _attr(n, name, default):
    from onnx import helper

    for a in n.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _slice(n, x, starts, ends, axes=None, steps=None):
    index = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for a, b, e, st in zip(axes, starts, ends, steps):
        index[int(a)] = slice(int(b), int(e), int(st))
    return x[tuple(index)]


CONSTANT_EVAL = {
    'ConstantOfShape': lambda n, shape: np.zeros(shape.astype(np.int64), np.int64),
    'Concat': lambda n, *xs: np.concatenate(xs, _attr(n, 'axis', 0)),
    'Reshape': lambda n, x, shape: x.reshape(shape),
    'Slice': _slice,
    'Transpose': lambda n, x: np.transpose(x, _attr(n, 'perm', None)),
    'Cast': lambda n, x: x.astype(np.int64),
}


def prune(g):
    """Remove the nodes whose outputs nothing reads any more (the pads arithmetic)."""
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)


def upgrade(src, dst, target):
    """Rewrite an opset-17 model into the form of opset `target` (18..21), keeping its float
    function: Reduce* `axes` attribute -> input; Split with equal `split` sizes -> `num_outputs`;
    Pad of the spatial axes only -> pads of those axes with the `axes` input (negative axes).
    Opsets 19 to 21 changed Reshape, Cast, Pad, Squeeze, Flatten, ... only in types and new
    modes, so the nodes stay as they are and the opset import says which version they are."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(src)
    g = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        # F.pad's pads are computed from constants (ConstantOfShape, Concat, Reshape, Slice,
        # Transpose, Cast): evaluate them, as an exporter with constant folding would write them.
        ins = [values.get(i) for i in n.input]
        if n.op_type == 'Constant':
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif any(v is None for v in ins) or n.op_type not in CONSTANT_EVAL:
            continue
        else:
            values[n.output[0]] = CONSTANT_EVAL[n.op_type](n, *ins)

    def add(name, arr):
        g.initializer.append(numpy_helper.from_array(np.asarray(arr, np.int64), name))
        return name

    for n in g.node:
        if n.op_type in REDUCE_18:
            axes = [a for a in n.attribute if a.name == 'axes']
            if axes:
                n.input.append(add(f'{n.name}_axes', list(axes[0].ints)))
                n.attribute.remove(axes[0])
        elif n.op_type == 'Split' and len(n.input) == 2 and n.input[1] in values:
            sizes = values[n.input[1]].tolist()
            if len(set(sizes)) == 1:
                del n.input[1]
                n.attribute.append(helper.make_attribute('num_outputs', len(sizes)))
        elif n.op_type == 'Pad' and n.input[1] in values:
            pads = values[n.input[1]].tolist()
            rank = len(pads) // 2
            if rank == 4 and pads[0] == pads[1] == pads[4] == pads[5] == 0:
                spatial = add(f'{n.name}_spatial_pads', pads[2:4] + pads[6:8])
                value = n.input[2] if len(n.input) > 2 else ''
                inputs = [n.input[0], spatial, value, add(f'{n.name}_axes', [-2, -1])]
                del n.input[:]
                n.input.extend(inputs)
    prune(g)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid('', target))
    model.ir_version = IR_OF_OPSET[target]
    onnx.save(model, dst)  # onnx 1.12's checker stops at opset 17: the tests load it in onnxruntime
    print(f'{os.path.basename(dst)[:-5]}: opset 17 -> {target}, {os.path.getsize(dst)} bytes')


def export_tf2onnx_style():
    """A Keras NHWC CNN as tf2onnx writes it: NHWC input, Transpose to NCHW, explicit Pad,
    Conv, Relu, ReduceMean over the spatial axes (keepdims 0) or ReduceMean + Squeeze, MatMul + Add."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)

    def const(name, arr):
        return numpy_helper.from_array(np.asarray(arr), name)

    inits = [
        const('perm_to_nchw', np.array([0, 3, 1, 2], np.int64)),
        const('pads', np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        const('w1', rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)),
        const('b1', rng.normal(0, 0.1, 8).astype(np.float32)),
        const('w2', rng.normal(0, 0.2, (16, 8, 3, 3)).astype(np.float32)),
        const('b2', rng.normal(0, 0.1, 16).astype(np.float32)),
        const('axes_sq', np.array([2, 3], np.int64)),
        const('dense_w', rng.normal(0, 0.3, (16, 10)).astype(np.float32)),
        const('dense_b', rng.normal(0, 0.1, 10).astype(np.float32)),
    ]
    nodes = [
        helper.make_node('Transpose', ['input_1'], ['nchw'], perm=[0, 3, 1, 2], name='sequential/conv2d/Conv2D__6'),
        helper.make_node('Pad', ['nchw', 'pads'], ['padded'], mode='constant', name='sequential/zero_padding2d/Pad'),
        helper.make_node('Conv', ['padded', 'w1', 'b1'], ['c1'], kernel_shape=[3, 3], strides=[1, 1], name='sequential/conv2d/BiasAdd'),
        helper.make_node('Relu', ['c1'], ['r1'], name='sequential/conv2d/Relu'),
        helper.make_node('MaxPool', ['r1'], ['p1'], kernel_shape=[2, 2], strides=[2, 2], name='sequential/max_pooling2d/MaxPool'),
        helper.make_node('Conv', ['p1', 'w2', 'b2'], ['c2'], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name='sequential/conv2d_1/BiasAdd'),
        helper.make_node('Relu', ['c2'], ['r2'], name='sequential/conv2d_1/Relu'),
        helper.make_node('ReduceMean', ['r2'], ['gap'], axes=[2, 3], keepdims=1, name='sequential/global_average_pooling2d/Mean'),
        helper.make_node('Squeeze', ['gap', 'axes_sq'], ['flat'], name='sequential/global_average_pooling2d/Mean_Squeeze__10'),
        helper.make_node('MatMul', ['flat', 'dense_w'], ['mm'], name='sequential/dense/MatMul'),
        helper.make_node('Add', ['mm', 'dense_b'], ['dense'], name='sequential/dense/BiasAdd'),
    ]
    graph = helper.make_graph(
        nodes, 'tf2onnx', [helper.make_tensor_value_info('input_1', TensorProto.FLOAT, ['unk__12', 32, 32, 3])],
        [helper.make_tensor_value_info('dense', TensorProto.FLOAT, ['unk__13', 10])], inits,
    )
    model = helper.make_model(graph, producer_name='tf2onnx', producer_version='1.9.3', opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = os.path.join(OUT, 'keras_nhwc.onnx')
    onnx.save(model, path)
    print(f'keras_nhwc: opset 13, {os.path.getsize(path)} bytes')


CLASSES = ['t-shirt_top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot']


def sidecar(name, exporter):
    """What FxPQ reads beside a model: the tests feed the committed Fashion-MNIST images, resized to 32x32 RGB."""
    import json

    doc = {
        'description': f'architecture zoo: {name}, small width, random weights ({exporter}); structure only, no accuracy',
        'source': 'scripts/zoo/generate.py',
        'licence': 'MIT (made by this project)',
        'preprocess': 'resize=32,crop=32,channels=3,mean=0.5,std=0.25',
        'classes': CLASSES,
        'data': '../fashion-mnist',
    }
    with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    only = set(sys.argv[1:])
    for name, factory, opset in MODELS:
        if not only or name in only:
            export_torch(name, factory, opset)
            sidecar(name, f'torch.onnx.export, opset {opset}')
    for name, factory, opset in UPGRADED:
        if not only or name in only:
            src = os.path.join(OUT, f'{name}.opset17.onnx')
            export_torch(name, factory, 17, src, fold=True)
            upgrade(src, os.path.join(OUT, f'{name}.onnx'), opset)
            os.remove(src)
            sidecar(name, f'torch.onnx.export at opset 17, rewritten into the opset-{opset} forms')
    if not only or 'keras_nhwc' in only:
        export_tf2onnx_style()
        sidecar('keras_nhwc', 'the graph tf2onnx writes for a Keras NHWC model, opset 13')
