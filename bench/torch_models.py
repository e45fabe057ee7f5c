"""The tutorial's networks and ours (DenseNet, fast-cnn, cnn7) in PyTorch, with the same parameter names as core/model/zoo/*.ts.

Used by test/fixtures/make-torch-fixtures.py (golden numbers) and bench/torch_train.py (side-by-side
throughput). The residual variants use the paper's form: conv2 on relu(conv1(x)).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(784, 512)
        self.l2 = nn.Linear(512, 256)
        self.l3 = nn.Linear(256, 128)
        self.l4 = nn.Linear(128, 64)
        self.l5 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = F.relu(self.l1(x))
        x = F.relu(self.l2(x))
        x = F.relu(self.l3(x))
        x = F.relu(self.l4(x))
        return self.l5(x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.pooling = nn.MaxPool2d(2)
        self.fc = nn.Linear(320, 10)

    def forward(self, x):
        x = F.relu(self.pooling(self.conv1(x)))
        x = F.relu(self.pooling(self.conv2(x)))
        return self.fc(x.view(x.size(0), -1))


class InceptionA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.branch1x1 = nn.Conv2d(c, 16, 1)
        self.branch5x5_1 = nn.Conv2d(c, 16, 1)
        self.branch5x5_2 = nn.Conv2d(16, 24, 5, padding=2)
        self.branch3x3_1 = nn.Conv2d(c, 16, 1)
        self.branch3x3_2 = nn.Conv2d(16, 24, 3, padding=1)
        self.branch3x3_3 = nn.Conv2d(24, 24, 3, padding=1)
        self.branch_pool = nn.Conv2d(c, 24, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3_3(self.branch3x3_2(self.branch3x3_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], dim=1)


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(88, 20, 5)
        self.incep1 = InceptionA(10)
        self.incep2 = InceptionA(20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(1408, 10)

    def forward(self, x):
        x = F.relu(self.mp(self.conv1(x)))
        x = self.incep1(x)
        x = F.relu(self.mp(self.conv2(x)))
        x = self.incep2(x)
        return self.fc(x.view(x.size(0), -1))


class Cnn3(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.pooling = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pooling(F.relu(self.conv1(x)))
        x = self.pooling(F.relu(self.conv2(x)))
        x = self.pooling(F.relu(self.conv3(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ResidualBlock(nn.Module):
    def __init__(self, c, shortcut="identity"):
        super().__init__()
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        if shortcut == "conv":
            self.conv3 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        if self.shortcut == "conv":
            return F.relu(self.conv3(x) + y)
        z = x + y
        return F.relu(0.5 * z if self.shortcut == "scaled" else z)


class ResNet(nn.Module):
    def __init__(self, shortcut="identity"):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.mp = nn.MaxPool2d(2)
        self.rblock1 = ResidualBlock(16, shortcut)
        self.rblock2 = ResidualBlock(32, shortcut)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        x = self.mp(F.relu(self.conv1(x)))
        x = self.rblock1(x)
        x = self.mp(F.relu(self.conv2(x)))
        x = self.rblock2(x)
        return self.fc(x.view(x.size(0), -1))


class DenseLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.BatchNorm2d(c)
        self.conv = nn.Conv2d(c, 12, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.norm(x)))], 1)


class Transition(nn.Module):
    def __init__(self, c, out):
        super().__init__()
        self.norm = nn.BatchNorm2d(c)
        self.conv = nn.Conv2d(c, out, 1, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        return self.pool(self.conv(F.relu(self.norm(x))))


class DenseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.norm0 = nn.BatchNorm2d(16)
        self.block1 = nn.Sequential(*[DenseLayer(16 + 12 * i) for i in range(3)])
        self.transition1 = Transition(52, 26)
        self.block2 = nn.Sequential(*[DenseLayer(26 + 12 * i) for i in range(3)])
        self.norm_final = nn.BatchNorm2d(62)
        self.fc = nn.Linear(62, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.norm0(self.conv0(x))), 2)
        x = self.transition1(self.block1(x))
        x = F.relu(self.norm_final(self.block2(x)))
        x = F.avg_pool2d(x, 7)
        return self.fc(x.view(x.size(0), -1))


class ConvBnReLU(nn.Module):
    def __init__(self, c_in, c_out, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class FastCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvBnReLU(1, 16, 4, 2, 1)
        self.conv2 = ConvBnReLU(16, 32, 3, 2, 1)
        self.conv3 = ConvBnReLU(32, 64, 3)
        self.fc = nn.Linear(64 * 5 * 5, 10)

    def forward(self, x):
        x = self.conv3(self.conv2(self.conv1(x)))
        return self.fc(x.view(x.size(0), -1))


def cnn7_block(c_in, c, deeper=False):
    extra = [ConvBnReLU(c, c, 3, 1, 1)] if deeper else []
    return nn.Sequential(
        ConvBnReLU(c_in, c, 3), ConvBnReLU(c, c, 3), *extra, ConvBnReLU(c, c, 5, 2, 2), nn.Dropout(0.4)
    )


class Cnn7(nn.Module):
    """width scales every layer's channels (cnn7-wide: 1.5, cnn7-wider: 2); deeper adds a padded 3×3 conv
    before each block's downsampling (cnn9-wide)."""

    def __init__(self, width=1, deeper=False):
        super().__init__()
        c1, c2, c3 = (round(c * width) for c in (32, 64, 128))
        self.block1 = cnn7_block(1, c1, deeper)
        self.block2 = cnn7_block(c1, c2, deeper)
        self.head = ConvBnReLU(c2, c3, 4)
        self.drop = nn.Dropout(0.4)
        self.fc = nn.Linear(c3, 10)

    def forward(self, x):
        x = self.head(self.block2(self.block1(x)))
        return self.fc(self.drop(x.view(x.size(0), -1)))


ZOO = {
    "mlp": Mlp,
    "cnn": Cnn,
    "cnn3": Cnn3,
    "inception": Inception,
    "resnet": ResNet,
    "resnet-scaled": lambda: ResNet("scaled"),
    "resnet-convshortcut": lambda: ResNet("conv"),
    "densenet": DenseNet,
    "fast-cnn": FastCnn,
    "cnn7": Cnn7,
    "cnn7-wide": lambda: Cnn7(1.5),
    "cnn7-wider": lambda: Cnn7(2),
    "cnn9-wide": lambda: Cnn7(1.5, deeper=True),
}
